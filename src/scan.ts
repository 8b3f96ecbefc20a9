/**
 * One check with its I/O: reads the allowlists and the rules of every family the
 * config asks for, decides with {@linkcode checkRules}, and logs what a node engineer
 * needs (every unexpected rule at level 0, details at `-v 2`, each match at `-v 3`).
 *
 * @module
 */

import { type CheckReport, checkRules, type FamilyCaches, type FamilyInput } from "./check.ts";
import type { Config } from "./cli/config.ts";
import { readFamily, readRulesFile } from "./iptables/read.ts";
import { type CommandRunner, runCommand } from "./iptables/runner.ts";
import { listChains, nftViewOn, readNftView } from "./nft/read.ts";
import type { Family } from "./iptables/types.ts";
import { loadAllowlist } from "./patterns/allowlist.ts";
import { describeError, printable } from "./report/text.ts";
import type { Logger } from "./report/log.ts";
import { collectGarbage } from "./gc.ts";

/** How long one `iptables-save` may take before it is killed. */
export const SAVE_TIMEOUT_MS = 60_000;

/** The edges a check reads through; tests swap the command runner. */
export interface ScanDeps {
  log: Logger;
  run?: CommandRunner;
  /** Verdicts kept across checks (daemon only). */
  cache?: FamilyCaches;
  /** Aborting kills the save commands under way (shutdown); the report is then discarded. */
  signal?: AbortSignal;
  /**
   * The Kubernetes client loads on this thread meanwhile (the first check of a run that
   * reports), which blocks it for about as long as a save runs. The commands then keep
   * their output in buffers of their own, so that they finish meanwhile instead of
   * stopping at a full pipe; and the collection between reading and matching is left
   * out: the daemon collects after the check, and a one-shot exits.
   */
  clientLoading?: boolean;
}

function familiesOf(config: Config): { family: Family; dir: string; rulesFile?: string }[] {
  const families: { family: Family; dir: string; rulesFile?: string }[] = [
    { family: "ipv4", dir: config.input, rulesFile: config.rulesFile },
  ];
  if (config.ipv6) {
    families.push({ family: "ipv6", dir: config.input6, rulesFile: config.rulesFile6 });
  }
  return families;
}

/** A source read from the nf_tables backend, e.g. `iptables-nft-save (nf_tables)`. */
const NF_TABLES_SOURCE = /\(nf_tables\)$/;

/**
 * The iptables tables each family's nf_tables save printed: the rest is listed by nft. A
 * table counts as printed when the dump holds its built-in chains (`-P` lines), as every
 * table iptables-nft-save can show does; one it marks incompatible has none.
 */
function shownTables(inputs: readonly FamilyInput[]): Map<Family, Set<string>> {
  const shown = new Map<Family, Set<string>>();
  for (const { family, read } of inputs) {
    for (const source of read.sources) {
      if (!NF_TABLES_SOURCE.test(source.source)) continue;
      const tables = shown.get(family) ?? new Set<string>();
      for (const { table, rules } of source.tables) {
        if (rules.some((rule) => rule.text.startsWith("-P "))) tables.add(table);
      }
      shown.set(family, tables);
    }
  }
  return shown;
}

/** Runs one check as the config says and logs its findings. */
export async function scan(config: Config, deps: ScanDeps): Promise<CheckReport> {
  const { log } = deps;
  const started = performance.now();
  const given = deps.run ?? runCommand;
  const bufferInChild = deps.clientLoading ?? false;
  // Every command of the check stops when the program does (shutdown), and buffers its
  // output while the client loads.
  const run: CommandRunner = (command, args, options) =>
    given(command, args, { ...options, signal: deps.signal, bufferInChild });
  const families = familiesOf(config);
  // The cheap first step of the nft view runs next to the saves (see src/nft/read.ts).
  const listing = nftViewOn(config) ? listChains(run, SAVE_TIMEOUT_MS) : undefined;
  let inputs: FamilyInput[] = await Promise.all(
    families.map(async ({ family, dir, rulesFile }) => {
      const [allowlist, read] = await Promise.all([
        loadAllowlist(dir),
        rulesFile !== undefined ? readRulesFile(rulesFile, family) : readFamily(family, {
          timeoutMs: SAVE_TIMEOUT_MS,
          run,
          remember: deps.cache !== undefined,
        }),
      ]);
      return { family, allowlist, read };
    }),
  );
  if (listing !== undefined) {
    const nft = await readNftView(await listing, {
      families: families.map(({ family }) => family),
      shown: shownTables(inputs),
      run,
      timeoutMs: SAVE_TIMEOUT_MS,
    });
    inputs = inputs.map((input) => ({
      ...input,
      read: {
        ...input.read,
        errors: [...input.read.errors, ...nft.errors.filter((e) => e.family === input.family)],
      },
      nft: nft.tables.get(input.family) ?? [],
    }));
  }
  const read = performance.now();
  // What reading left behind (nft's JSON, the parser's pieces) goes before matching
  // builds its tables: a check's peak is then the larger of the two, not their sum.
  if (!deps.clientLoading) collectGarbage();
  const verbose3 = log.v(3);
  const report = checkRules(inputs, {
    node: config.nodeName ?? null,
    cache: deps.cache,
    onMatch: verbose3.enabled
      ? ({ family, table, rule, pattern }) =>
        verbose3.info(
          `MATCHED ${family} ${table}: ${
            printable(rule.text)
          } (pattern ${pattern.file}:${pattern.line} ${JSON.stringify(pattern.regexp.source)})`,
        )
      : undefined,
  });
  // A check cut short by a signal is dropped: its "stopped" read errors are no findings.
  if (deps.signal?.aborted) return report;
  logFindings(report, inputs, log);
  const details = log.v(2);
  if (details.enabled) {
    const rules = report.families.reduce(
      (sum, f) => sum + f.tables.reduce((n, t) => n + t.rules, 0),
      0,
    );
    details.info(
      `check done: ${rules} rules in ${report.families.length} sources, verdict ${report.verdict}; ` +
        `read ${(read - started).toFixed(0)} ms, matched ${
          (performance.now() - read).toFixed(0)
        } ms`,
    );
  }
  return report;
}

function logFindings(report: CheckReport, inputs: FamilyInput[], log: Logger): void {
  for (const error of report.errors) {
    if (error.kind === "pattern") log.warning(`skipped invalid pattern ${describeError(error)}`);
    else log.error(describeError(error));
  }
  for (const { family, source, tables } of report.families) {
    for (const { table, unexpected } of tables) {
      for (const { rule, reason } of unexpected) {
        log.info(
          `unexpected rule in ${family} ${table} (${source}): ${printable(rule)}${
            reason === undefined ? "" : ` (${reason})`
          }`,
        );
      }
    }
  }
  const details = log.v(2);
  if (details.enabled) {
    for (const { family, allowlist } of inputs) {
      const counts = [...allowlist.patterns].map(([name, list]) => `${name}=${list.length}`);
      details.info(`${family} allowlist ${allowlist.dir}: ${counts.join(" ")}`);
    }
    for (const { family, source, tables } of report.families) {
      for (const { table, rules, unexpected } of tables) {
        details.info(
          `${family} ${source} ${table}: ${rules} rules, ${unexpected.length} unexpected`,
        );
      }
    }
  }
}
