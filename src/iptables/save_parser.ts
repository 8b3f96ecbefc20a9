/**
 * Turns an `iptables-save` dump into the lines `iptables -t TABLE -S` prints, because
 * allowlists were written against those lines and one save process is far cheaper than
 * one `-S` process per chain.
 */
import type { Rule, TableRules } from "./types.ts";

/** A parsed dump, or the first line that makes it not a dump. Never throws. */
export type ParseResult =
  | { ok: true; tables: TableRules[] }
  | { ok: false; line: number; message: string };

interface OpenTable {
  name: string;
  startLine: number;
  /** Where the line after `*name` starts. */
  bodyStart: number;
  chains: Set<string>;
  rules: Rule[];
}

const COUNTERS = /^\[[0-9]+:[0-9]+\]$/;
const EXCERPT_LENGTH = 60;

/** A short, quoted, single-line rendering of a line for an error message. */
function excerpt(line: string): string {
  const short = line.length > EXCERPT_LENGTH ? `${line.slice(0, EXCERPT_LENGTH)}...` : line;
  return JSON.stringify(short);
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const HASH = 0x23;
const STAR = 0x2a;
const COLON = 0x3a;
const BRACKET = 0x5b;

/** A table parsed earlier, kept so that the same table in a later dump is not parsed again. */
interface KnownTable {
  name: string;
  /** The `:CHAIN POLICY [p:b]` lines opening the table's body. */
  declarations: string;
  /** The rest of the body, up to the `COMMIT` line. */
  rest: string;
  table: TableRules;
  /** Lines from the `*name` line (excluded) to `COMMIT` (included). */
  lines: number;
}

/** The most tables of one name remembered: one per backend and family that has it. */
const KNOWN_PER_NAME = 4;
/** The most tables remembered in all. */
const KNOWN_TOTAL = 32;

/**
 * The tables of the last dumps parsed. A daemon reads the same rules check after check;
 * a table whose body is unchanged (chain counters aside) is handed back as it was parsed
 * before, so an unchanged ruleset costs a comparison of its text, not a parse, and
 * builds no new objects. Parsed tables are shared, so callers must not change them.
 */
class KnownTables {
  #tables: KnownTable[] = [];

  /**
   * The table named `name` whose body starts at `bodyStart` in `text`, if a table parsed
   * before had the same body; with where the dump goes on after its `COMMIT` line.
   */
  find(
    text: string,
    bodyStart: number,
    name: string,
  ): { table: TableRules; lines: number; next: number } | undefined {
    if (!this.#tables.some((known) => known.name === name)) return undefined;
    const commit = findCommitLine(text, bodyStart);
    if (commit === undefined) return undefined;
    const declarationsEnd = endOfDeclarations(text, bodyStart, commit.start);
    const rest = text.slice(declarationsEnd, commit.start);
    const declarations = text.slice(bodyStart, declarationsEnd);
    const index = this.#tables.findIndex((known) =>
      known.name === name && known.rest === rest &&
      sameDeclarations(known.declarations, declarations)
    );
    if (index === -1) return undefined;
    const [known] = this.#tables.splice(index, 1);
    this.#tables.unshift(known);
    return { table: known.table, lines: known.lines, next: commit.next };
  }

  /** Remembers a table just parsed from `text[bodyStart, commitStart)`. */
  remember(
    text: string,
    bodyStart: number,
    commitStart: number,
    table: TableRules,
    lines: number,
  ): void {
    const declarationsEnd = endOfDeclarations(text, bodyStart, commitStart);
    this.#tables.unshift({
      name: table.table,
      declarations: text.slice(bodyStart, declarationsEnd),
      rest: text.slice(declarationsEnd, commitStart),
      table,
      lines,
    });
    let sameName = 0;
    this.#tables = this.#tables.filter((known, i) =>
      i < KNOWN_TOTAL && (known.name !== table.table || ++sameName <= KNOWN_PER_NAME)
    );
  }
}

const recentTables = new KnownTables();

/** The first line `COMMIT` at or after `from`: where it starts and where the next line does. */
function findCommitLine(text: string, from: number): { start: number; next: number } | undefined {
  for (let at = text.indexOf("COMMIT", from); at !== -1; at = text.indexOf("COMMIT", at + 1)) {
    if (at !== from && text.charCodeAt(at - 1) !== LF) continue;
    let after = at + 6;
    if (after < text.length && text.charCodeAt(after) === CR) after++;
    if (after === text.length) return { start: at, next: text.length + 1 };
    if (text.charCodeAt(after) === LF) return { start: at, next: after + 1 };
  }
  return undefined;
}

/** Where the lines starting with `:` that open `text[from, to)` end. */
function endOfDeclarations(text: string, from: number, to: number): number {
  let at = from;
  while (at < to && text.charCodeAt(at) === COLON) {
    const end = text.indexOf("\n", at);
    if (end === -1 || end >= to) return to;
    at = end + 1;
  }
  return at;
}

/** Whether two blocks of declarations declare the same chains and policies, in order. */
function sameDeclarations(a: string, b: string): boolean {
  if (a === b) return true;
  let atA = 0;
  let atB = 0;
  while (atA < a.length && atB < b.length) {
    let endA = a.indexOf("\n", atA);
    if (endA === -1) endA = a.length;
    let endB = b.indexOf("\n", atB);
    if (endB === -1) endB = b.length;
    const lineA = a.slice(atA, endA);
    const lineB = b.slice(atB, endB);
    if (lineA !== lineB) {
      // Only the packet and byte counters may differ.
      const declaredA = canonicalDeclaration(withoutCR(lineA));
      const declaredB = canonicalDeclaration(withoutCR(lineB));
      if (
        declaredA === undefined || declaredB === undefined ||
        declaredA.chain !== declaredB.chain || declaredA.policy !== declaredB.policy
      ) {
        return false;
      }
    }
    atA = endA + 1;
    atB = endB + 1;
  }
  return atA >= a.length && atB >= b.length;
}

function withoutCR(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Whether `text[from, to)` is `[digits:digits]`, as {@linkcode COUNTERS} checks. */
function isCounters(text: string, from: number, to: number): boolean {
  if (to - from < 5 || text.charCodeAt(from) !== BRACKET || text.charCodeAt(to - 1) !== 0x5d) {
    return false;
  }
  let i = from + 1;
  const digitsFrom = i;
  while (i < to && isDigit(text.charCodeAt(i))) i++;
  if (i === digitsFrom || text.charCodeAt(i) !== COLON) return false;
  const secondFrom = ++i;
  while (i < to && isDigit(text.charCodeAt(i))) i++;
  return i > secondFrom && i === to - 1;
}

/**
 * The chain and policy of a declaration in the form `iptables-save` writes,
 * `:CHAIN POLICY [p:b]` with single spaces; undefined for any other form, which the
 * general (slower) reading then accepts or rejects.
 */
function canonicalDeclaration(line: string): { chain: string; policy: string } | undefined {
  const chainEnd = line.indexOf(" ", 1);
  if (chainEnd <= 1) return undefined;
  const policyEnd = line.indexOf(" ", chainEnd + 1);
  if (policyEnd <= chainEnd + 1 || line.indexOf(" ", policyEnd + 1) !== -1) return undefined;
  if (!isCounters(line, policyEnd + 1, line.length)) return undefined;
  return { chain: line.slice(1, chainEnd), policy: line.slice(chainEnd + 1, policyEnd) };
}

/** Whether `text[from, to)` holds only spaces and tabs (or nothing). */
function isBlank(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== SPACE && c !== TAB) return false;
  }
  return true;
}

/**
 * Parses an `iptables-save` (or `ip6tables-save`) dump in one linear pass.
 *
 * - `*table` opens a table, `COMMIT` closes it; `#` comments and blank lines are skipped.
 * - `:CHAIN POLICY [p:b]` becomes `-P CHAIN POLICY`; `:CHAIN - [p:b]` becomes `-N CHAIN`.
 * - `-A CHAIN ...` is kept as it is; a `[p:b] ` counter prefix (`iptables-save -c`) is
 *   dropped, as `iptables -S` does not print counters.
 * - A trailing `\r` is dropped from every line.
 *
 * Anything else, a rule outside a table, a rule for an undeclared chain, or a table
 * still open at the end (a truncated dump) is an error naming the 1-based line.
 *
 * The dump of a node with thousands of services has hundreds of thousands of lines and
 * is read at every check, so lines are found with `indexOf` and only rule lines become
 * strings; consecutive rules of one chain share its name; and a table whose text did not
 * change since a recent call (chain counters aside) is not parsed again: the earlier
 * result is returned, the same objects, so results must be treated as read-only.
 */
export function parseIptablesSave(text: string): ParseResult {
  const tables: TableRules[] = [];
  const seenTables = new Set<string>();
  let open: OpenTable | undefined;
  /** The chain of the previous `-A` line of the open table ("" when none). */
  let lastChain = "";
  const nulAt = text.indexOf("\0");

  const fail = (line: number, message: string): ParseResult => ({ ok: false, line, message });

  let lineNumber = 0;
  let lastLineEmpty = false;
  for (let start = 0; start <= text.length;) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const next = end + 1;
    lineNumber++;
    lastLineEmpty = end === start;
    let stop = end;
    if (stop > start && text.charCodeAt(stop - 1) === CR) stop--;
    if (nulAt !== -1 && nulAt < end) {
      return fail(lineNumber, "binary content (a NUL byte); this is not an iptables-save dump");
    }
    const first = start < stop ? text.charCodeAt(start) : LF;
    if (
      first === HASH ||
      ((first === SPACE || first === TAB || first === LF) && isBlank(text, start, stop))
    ) {
      start = next;
      continue;
    }
    const lineStart = start;
    const line = text.slice(start, stop);
    start = next;

    if (first === STAR) {
      if (open !== undefined) {
        return fail(
          lineNumber,
          `table "${open.name}" (line ${open.startLine}) has no COMMIT before ${excerpt(line)}`,
        );
      }
      const name = line.slice(1);
      if (name === "" || name.includes(" ") || name.includes("\t")) {
        return fail(lineNumber, `bad table name in ${excerpt(line)}`);
      }
      if (seenTables.has(name)) {
        return fail(lineNumber, `table "${name}" appears twice; one dump holds each table once`);
      }
      seenTables.add(name);
      const known = recentTables.find(text, start, name);
      if (known !== undefined) {
        tables.push(known.table);
        lineNumber += known.lines;
        lastLineEmpty = false;
        start = known.next;
        continue;
      }
      open = { name, startLine: lineNumber, bodyStart: start, chains: new Set(), rules: [] };
      lastChain = "";
      continue;
    }

    if (open === undefined) {
      if (tables.length === 0) {
        return fail(
          lineNumber,
          `not an iptables-save dump: expected a "*table" line, found ${excerpt(line)}`,
        );
      }
      return fail(lineNumber, `${excerpt(line)} is outside any table (after COMMIT)`);
    }

    if (first === COLON) {
      let declaration = canonicalDeclaration(line);
      if (declaration === undefined) {
        const parts = line.slice(1).split(" ").filter((part) => part !== "");
        const [chain, policy, counters] = parts;
        if (
          chain === undefined || policy === undefined || parts.length > 3 ||
          (counters !== undefined && !COUNTERS.test(counters))
        ) {
          return fail(
            lineNumber,
            `bad chain declaration ${excerpt(line)}; expected ":CHAIN POLICY [p:b]"`,
          );
        }
        declaration = { chain, policy };
      }
      const { chain, policy } = declaration;
      if (open.chains.has(chain)) {
        return fail(lineNumber, `chain "${chain}" is declared twice in table "${open.name}"`);
      }
      open.chains.add(chain);
      open.rules.push({ chain, text: policy === "-" ? `-N ${chain}` : `-P ${chain} ${policy}` });
      continue;
    }

    if (line === "COMMIT") {
      const table = { table: open.name, rules: open.rules };
      tables.push(table);
      recentTables.remember(text, open.bodyStart, lineStart, table, lineNumber - open.startLine);
      open = undefined;
      continue;
    }

    let rule = line;
    if (first === BRACKET) {
      // `iptables-save -c` prefixes each rule with its packet and byte counters.
      const end = rule.indexOf("] ");
      if (end > 0 && COUNTERS.test(rule.slice(0, end + 1))) rule = rule.slice(end + 2);
    }
    if (rule.startsWith("-A ")) {
      let chain: string;
      const after = 3 + lastChain.length;
      if (
        lastChain !== "" && rule.startsWith(lastChain, 3) &&
        (rule.length === after || rule.charCodeAt(after) === SPACE)
      ) {
        chain = lastChain; // the usual case: the same chain as the line before
      } else {
        const chainEnd = rule.indexOf(" ", 3);
        chain = chainEnd === -1 ? rule.slice(3) : rule.slice(3, chainEnd);
        if (chain === "") return fail(lineNumber, `rule without a chain: ${excerpt(line)}`);
        if (!open.chains.has(chain)) {
          return fail(
            lineNumber,
            `rule for chain "${chain}", which table "${open.name}" does not declare`,
          );
        }
        lastChain = chain;
      }
      open.rules.push({ chain, text: rule });
      continue;
    }

    return fail(
      lineNumber,
      `unexpected ${
        excerpt(line)
      } in table "${open.name}"; expected ":CHAIN", "-A CHAIN ..." or "COMMIT"`,
    );
  }

  if (open !== undefined) {
    const lastLine = lineNumber > 1 && lastLineEmpty ? lineNumber - 1 : lineNumber;
    return fail(
      lastLine,
      `table "${open.name}" (line ${open.startLine}) has no COMMIT at the end; the dump looks truncated`,
    );
  }
  return { ok: true, tables };
}
