/**
 * One check, decided without I/O: allowlists and rules in, verdict out. Everything
 * read at the edges (files, commands) arrives here as data; reporters and the
 * Kubernetes client take the result.
 *
 * @module
 */

import type { Allowlist, PatternEntry } from "./patterns/allowlist.ts";
import { TableMatcher } from "./patterns/matcher.ts";
import { type Family, type FamilyRead, type Rule, TABLES } from "./iptables/types.ts";
import { NFT_ALLOWLIST } from "./patterns/allowlist.ts";
import { NFT_SOURCE, type NftTable } from "./nft/read.ts";

/** A rule no pattern allowed, or a line no pattern may allow. */
export interface UnexpectedRule {
  chain: string;
  rule: string;
  /** Why no pattern may allow this line (see {@linkcode Rule.unallowable}), when so. */
  reason?: string;
}

/** One table of one source: how many lines were checked, which were unexpected. */
export interface TableVerdict {
  table: string;
  rules: number;
  unexpected: UnexpectedRule[];
}

/** One backend of one family (e.g. `iptables-nft-save (nf_tables)`). */
export interface SourceVerdict {
  family: Family;
  source: string;
  tables: TableVerdict[];
}

/** Something that could not be read or compiled. */
export interface CheckError {
  kind: "pattern" | "allowlist" | "iptables" | "rules-file" | "nft";
  family: Family;
  file?: string;
  line?: number;
  source?: string;
  message: string;
}

/**
 * `"true"`: user rules found. `"false"`: everything was read and every rule was
 * expected. `"unknown"`: nothing unexpected in what could be read, but something could
 * not be read, so "false" would be a guess.
 */
export type Verdict = "true" | "false" | "unknown";

/** The result of one check: the JSON report's content. */
export interface CheckReport {
  node: string | null;
  verdict: Verdict;
  families: SourceVerdict[];
  errors: CheckError[];
}

/** What one family brings to a check. */
export interface FamilyInput {
  family: Family;
  allowlist: Allowlist;
  read: FamilyRead;
  /**
   * The nft view's tables whose objects this family's allowlist (`nftables` file)
   * decides; undefined when the nft view is off.
   */
  nft?: NftTable[];
}

/** Called for each rule a pattern allowed, when the caller wants to log it (`-v 3`). */
export type MatchListener = (
  match: { family: Family; source: string; table: string; rule: Rule; pattern: PatternEntry },
) => void;

const TABLE_ORDER: readonly string[] = TABLES;
/**
 * Error kinds that mean part of the node's rules went unchecked. A pattern Go would
 * reject is skipped as upstream does, so it does not make a check incomplete.
 */
export const READ_ERROR_KINDS: ReadonlySet<string> = new Set([
  "allowlist",
  "iptables",
  "rules-file",
  "nft",
]);

/** The sources of `read` with only their lines that no pattern may allow, if any. */
function unallowableOnly(family: Family, read: FamilyRead): SourceVerdict[] {
  const sources: SourceVerdict[] = [];
  for (const source of read.sources) {
    const tables: TableVerdict[] = [];
    for (const { table, rules } of source.tables) {
      const unexpected: UnexpectedRule[] = [];
      for (const rule of rules) {
        if (rule.unallowable === undefined) continue;
        unexpected.push({ chain: rule.chain, rule: rule.text, reason: rule.unallowable });
      }
      if (unexpected.length > 0) tables.push({ table, rules: unexpected.length, unexpected });
    }
    tables.sort((a, b) => tableRank(a.table) - tableRank(b.table));
    if (tables.length > 0) sources.push({ family, source: source.source, tables });
  }
  return sources;
}

/** Where a table goes in reports: the iptables tables in order, any other after them. */
function tableRank(table: string): number {
  const index = TABLE_ORDER.indexOf(table);
  return index === -1 ? TABLE_ORDER.length : index;
}

/** Decides which rules are unexpected, and the verdict, for the given families. */
export function checkRules(
  inputs: readonly FamilyInput[],
  options: { node: string | null; onMatch?: MatchListener; cache?: FamilyCaches },
): CheckReport {
  const families: SourceVerdict[] = [];
  const errors: CheckError[] = [];
  for (const { family, allowlist, read, nft } of inputs) {
    for (const error of allowlist.errors) errors.push({ ...error, family });
    for (const error of read.errors) {
      errors.push({ kind: error.kind, family, source: error.source, message: error.message });
    }
    if (!allowlist.readable) {
      // No pattern can judge this family's rules, but the lines no pattern may allow are
      // unexpected all the same: rule text can only ever make the verdict "true".
      families.push(...unallowableOnly(family, read));
      continue;
    }
    const caches = options.cache?.forFamily(family, allowlist.version);
    const matchers = new Map<string, TableMatcher>();
    const decide = (
      source: string,
      table: string,
      rules: readonly Rule[],
      matcher: TableMatcher,
    ) => {
      const verdicts = caches?.table(source, table).verdicts(
        rules,
        (text) => matcher.matches(text),
      );
      const unexpected: UnexpectedRule[] = [];
      for (let i = 0; i < rules.length; i++) {
        const rule = rules[i];
        if (rule.unallowable !== undefined) {
          // Content a node user controls can only make the verdict "true".
          unexpected.push({ chain: rule.chain, rule: rule.text, reason: rule.unallowable });
          continue;
        }
        const allowed = verdicts ? verdicts[i] === ALLOWED : matcher.matches(rule.text);
        if (!allowed) {
          unexpected.push({ chain: rule.chain, rule: rule.text });
        } else if (options.onMatch) {
          const pattern = matcher.firstMatch(rule.text);
          if (pattern) options.onMatch({ family, source, table, rule, pattern });
        }
      }
      return { table, rules: rules.length, unexpected };
    };
    for (const source of read.sources) {
      const tables: TableVerdict[] = [];
      for (const { table, rules } of source.tables) {
        let matcher = matchers.get(table);
        if (!matcher) {
          matcher = new TableMatcher([
            ...(allowlist.patterns.get(table) ?? []),
            ...(allowlist.patterns.get("global") ?? []),
          ]);
          matchers.set(table, matcher);
        }
        tables.push(decide(source.source, table, rules, matcher));
      }
      tables.sort((a, b) => tableRank(a.table) - tableRank(b.table));
      families.push({ family, source: source.source, tables });
    }
    if (nft !== undefined) {
      // Only the `nftables` file: `global` was written for iptables -S lines.
      const matcher = new TableMatcher(allowlist.patterns.get(NFT_ALLOWLIST) ?? []);
      families.push({
        family,
        source: NFT_SOURCE,
        tables: nft.map(({ table, rules }) => decide(NFT_SOURCE, table, rules, matcher)),
      });
    }
  }
  const anyUnexpected = families.some((f) => f.tables.some((t) => t.unexpected.length > 0));
  const incomplete = errors.some((e) => READ_ERROR_KINDS.has(e.kind));
  return {
    node: options.node,
    verdict: anyUnexpected ? "true" : incomplete ? "unknown" : "false",
    families,
    errors,
  };
}

const ALLOWED = 1;

/** The verdicts of one table of one source, for the rules of the check at hand. */
export interface TableCache {
  /**
   * The verdict of each of `rules` (1 allowed, 0 not), taken from the previous check
   * where it saw the same rule text, else from `decide`.
   */
  verdicts(rules: readonly Rule[], decide: (text: string) => boolean): Uint8Array;
}

/** What a check left for the next one: its rules of one table and their verdicts. */
interface TableMemory {
  rules: readonly Rule[];
  verdicts: Uint8Array;
}

/**
 * Verdicts by rule text, kept across the checks of a running daemon: a rule seen in the
 * previous check under the same patterns is not matched again. Each check keeps only
 * the rules it saw, so the cache never outgrows the ruleset; a change of patterns
 * empties it.
 *
 * Rules come back in the same order from one check to the next, so the previous check's
 * rules are walked alongside the current ones and compared in place; only where they
 * differ (rules added, removed or moved) is the previous check looked up by text.
 */
export class FamilyCaches {
  #families = new Map<
    Family,
    { version: string; previous: Map<string, TableMemory>; current: Map<string, TableMemory> }
  >();

  /** Starts a check of `family`: the caches of its tables for patterns at `version`. */
  forFamily(
    family: Family,
    version: string,
  ): { table(source: string, name: string): TableCache } {
    const old = this.#families.get(family);
    const entry = {
      version,
      previous: old && old.version === version ? old.current : new Map<string, TableMemory>(),
      current: new Map<string, TableMemory>(),
    };
    this.#families.set(family, entry);
    return {
      table(source: string, name: string): TableCache {
        const key = `${source}\u0000${name}`;
        return {
          verdicts(rules, decide) {
            const verdicts = reuseVerdicts(entry.previous.get(key), rules, decide);
            entry.current.set(key, { rules, verdicts });
            return verdicts;
          },
        };
      },
    };
  }
}

/** The verdicts of `rules`, reusing those of `before` for every rule text it holds. */
function reuseVerdicts(
  before: TableMemory | undefined,
  rules: readonly Rule[],
  decide: (text: string) => boolean,
): Uint8Array {
  // The parser hands back the same rules when a table did not change: nothing to match.
  if (before !== undefined && before.rules === rules) return before.verdicts;
  const verdicts = new Uint8Array(rules.length);
  let byText: Map<string, number> | undefined;
  let next = 0; // where the previous check's rules are expected to go on
  for (let i = 0; i < rules.length; i++) {
    const text = rules[i].text;
    if (before !== undefined) {
      let at: number | undefined = next;
      if (next >= before.rules.length || before.rules[next].text !== text) {
        byText ??= indexByText(before.rules);
        at = byText.get(text);
      }
      if (at !== undefined) {
        verdicts[i] = before.verdicts[at];
        next = at + 1;
        continue;
      }
    }
    verdicts[i] = decide(text) ? ALLOWED : 0;
  }
  return verdicts;
}

function indexByText(rules: readonly Rule[]): Map<string, number> {
  const index = new Map<string, number>();
  for (let i = 0; i < rules.length; i++) index.set(rules[i].text, i);
  return index;
}

/** Exit status of a one-shot check: 1 user rules, 2 could not decide, 0 clean. */
export function exitCodeFor(report: CheckReport): 0 | 1 | 2 {
  return report.verdict === "true" ? 1 : report.verdict === "unknown" ? 2 : 0;
}
