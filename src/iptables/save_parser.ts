/**
 * Turns an `iptables-save` dump into the lines `iptables -t TABLE -S` prints, because
 * allowlists were written against those lines and one save process is far cheaper than
 * one `-S` process per chain.
 *
 * The dump's text comes partly from the node's users (comments, chain and interface
 * names), so nothing in it can stop the parse or hide a line: every physical line ends up
 * as a rule of some table, a line of the dump's own structure, or a line that cannot be
 * allowlisted ({@linkcode Rule.unallowable}).
 */
import { BUILTIN_CHAINS, type Rule, type TableName, type TableRules, TABLES } from "./types.ts";

/**
 * A parsed dump: every table, and where the dump ended before its last table's `COMMIT`
 * (a save that was cut short or a partial file: something a node user cannot cause, see
 * {@linkcode parseIptablesSave}). Never throws.
 */
export interface ParseResult {
  tables: TableRules[];
  /** Set when the dump ends inside a table: the tables are kept, but the dump is incomplete. */
  truncated?: { line: number; message: string };
  /** How many `*table` lines opened a table; 0 means the text is no dump at all. */
  tableHeaders: number;
}

/** The table name under which lines that stand outside any table are reported. */
export const OUTSIDE_TABLES = "";

/** Why a line cannot be allowlisted, as reported next to it. */
export const Unallowable = {
  multiLine: "part of a rule printed over several lines (a raw newline in a quoted string)",
  outside: "a line outside any table",
  undeclared: "a rule for a chain the table does not declare",
  noChain: "a rule without a chain",
  lateDeclaration: "a chain declaration after the table's rules",
  badDeclaration: 'not a chain declaration iptables-save prints (":CHAIN POLICY [p:b]")',
  twiceDeclared: "a chain declared twice in one table",
  policyOfUserChain: "a policy for a chain that is not built into the table",
  unknownLine: "a line iptables-save never prints inside a table",
  tableTwice: "a table that appears twice in one dump",
  badTable: "a table line with a name iptables cannot have",
  unknownTable: "a table that is not one of nat, mangle, filter, raw, security",
} as const;

interface OpenTable {
  name: string;
  startLine: number;
  /** Where the line after `*name` starts. */
  bodyStart: number;
  chains: Set<string>;
  rules: Rule[];
  /** Whether only declarations were seen so far (they come before every rule). */
  declaring: boolean;
  /** Why no line of this table can be allowlisted (its name), if so. */
  unallowable: string | undefined;
}

const COUNTERS = /^\[[0-9]+:[0-9]+\]$/;

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const HASH = 0x23;
const STAR = 0x2a;
const COLON = 0x3a;
const BRACKET = 0x5b;
const BACKSLASH = 0x5c;

const KNOWN_TABLE_NAMES: ReadonlySet<string> = new Set(TABLES);

/** A table parsed earlier, kept so that the same table in a later dump is not parsed again. */
interface KnownTable {
  name: string;
  /** Whether the dump it came from had CRLF line ends (which changes how lines are read). */
  crlf: boolean;
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
 *
 * Sound because a table's parse depends only on its name, its body and the dump's line
 * ends, and a body always starts and (at its `COMMIT`) ends outside any quoted string.
 * A body holding a `COMMIT` line inside a quoted string is never reused: the first
 * `COMMIT` line found is then not the one that ended the remembered body.
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
    crlf: boolean,
  ): { table: TableRules; lines: number; next: number } | undefined {
    if (!this.#tables.some((known) => known.name === name)) return undefined;
    const commit = findCommitLine(text, bodyStart, crlf);
    if (commit === undefined) return undefined;
    const declarationsEnd = endOfDeclarations(text, bodyStart, commit.start);
    const rest = text.slice(declarationsEnd, commit.start);
    const declarations = text.slice(bodyStart, declarationsEnd);
    const index = this.#tables.findIndex((known) =>
      known.name === name && known.crlf === crlf && known.rest === rest &&
      sameDeclarations(known.declarations, declarations, crlf)
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
    crlf: boolean,
    table: TableRules,
    lines: number,
  ): void {
    const declarationsEnd = endOfDeclarations(text, bodyStart, commitStart);
    this.#tables.unshift({
      name: table.table,
      crlf,
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
function findCommitLine(
  text: string,
  from: number,
  crlf: boolean,
): { start: number; next: number } | undefined {
  for (let at = text.indexOf("COMMIT", from); at !== -1; at = text.indexOf("COMMIT", at + 1)) {
    if (at !== from && text.charCodeAt(at - 1) !== LF) continue;
    let after = at + 6;
    if (crlf && after < text.length && text.charCodeAt(after) === CR) after++;
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
function sameDeclarations(a: string, b: string, crlf: boolean): boolean {
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
      const declaredA = canonicalDeclaration(crlf ? withoutCR(lineA) : lineA);
      const declaredB = canonicalDeclaration(crlf ? withoutCR(lineB) : lineB);
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

/** A declaration in any form a dump may hold (`:CHAIN POLICY`, counters optional). */
function anyDeclaration(line: string): { chain: string; policy: string } | undefined {
  const canonical = canonicalDeclaration(line);
  if (canonical !== undefined) return canonical;
  const parts = line.slice(1).split(" ").filter((part) => part !== "");
  const [chain, policy, counters] = parts;
  if (
    chain === undefined || policy === undefined || parts.length > 3 ||
    (counters !== undefined && !COUNTERS.test(counters)) || chain.includes("\t")
  ) {
    return undefined;
  }
  return { chain, policy };
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
 * Where the quoted strings of a rule are, read as iptables writes them: a string opens
 * with `"` after a space, `\` escapes the next character inside it, and the next
 * unescaped `"` closes it. Each search starts after the previous one's result, so a whole
 * dump is scanned once, whatever the lines hold.
 */
class QuoteScanner {
  #text: string;
  /** The next `"` at or after the last search position (-1: none left, undefined: unknown). */
  #nextQuote: number | undefined;

  constructor(text: string) {
    this.#text = text;
  }

  #quoteFrom(from: number): number {
    if (this.#nextQuote === undefined || (this.#nextQuote !== -1 && this.#nextQuote < from)) {
      this.#nextQuote = this.#text.indexOf('"', from);
    }
    return this.#nextQuote;
  }

  /**
   * Whether `text[from, to)`, a physical line read from `from` with `quoted` telling
   * whether a string was open at its start, ends inside a quoted string.
   */
  endsQuoted(from: number, to: number, quoted: boolean): boolean {
    const text = this.#text;
    let at = from;
    for (;;) {
      const quote = this.#quoteFrom(at);
      if (quote === -1 || quote >= to) return quoted;
      at = quote + 1;
      if (quoted) {
        let backslashes = 0;
        while (
          quote - backslashes - 1 >= from && text.charCodeAt(quote - backslashes - 1) === BACKSLASH
        ) {
          backslashes++;
        }
        if (backslashes % 2 === 0) quoted = false;
      } else if (quote > from && text.charCodeAt(quote - 1) === SPACE) {
        quoted = true;
      }
    }
  }
}

/**
 * Parses an `iptables-save` (or `ip6tables-save`) dump in one linear pass.
 *
 * - `*table` opens a table, `COMMIT` closes it; `#` comments and blank lines between
 *   tables are skipped.
 * - `:CHAIN POLICY [p:b]` becomes `-P CHAIN POLICY`; `:CHAIN - [p:b]` becomes `-N CHAIN`.
 * - `-A CHAIN ...` is kept as it is; a `[p:b] ` counter prefix (`iptables-save -c`) is
 *   dropped, as `iptables -S` does not print counters.
 * - Lines are the dump's physical lines, split at `\n` only, exactly as the Go original
 *   splits the output of `iptables -S`; a trailing `\r` is dropped only from a dump whose
 *   first line ends in `\r\n` (a file that went through a Windows editor).
 * - A string iptables quoted (a comment, a log prefix) may hold raw newlines: the lines
 *   it continues on are never read as dump structure, so `COMMIT`, `*table`, `:CHAIN` or
 *   `-A` inside it change nothing. Every line of such a rule is a rule line of its own,
 *   as Go sees them, and none of them can be allowlisted.
 * - Any line that has no place in the structure (a rule for an undeclared chain, a
 *   comment inside a table, a table twice, a table iptables does not have, ...) is kept
 *   as a rule line that cannot be allowlisted, with its raw text: never an error.
 *
 * The only thing reported apart is a dump that ends inside a table: the tables are kept,
 * and `truncated` says where. The last `COMMIT` of a complete save can be swallowed only
 * by a quoted string, whose lines already cannot be allowlisted.
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
  let outside: TableRules | undefined;
  let tableHeaders = 0;
  /** The chain of the previous `-A` line of the open table ("" when none). */
  let lastChain = "";
  /** The rule whose quoted string is still open at the end of the previous line. */
  let continued: { chain: string } | undefined;
  const quotes = new QuoteScanner(text);
  const firstEnd = text.indexOf("\n");
  const crlf = firstEnd > 0 && text.charCodeAt(firstEnd - 1) === CR;

  /** Keeps a line that cannot be allowlisted, in the open table or outside any. */
  const unallowable = (chain: string, line: string, reason: string): Rule => {
    const rule: Rule = { chain, text: line, unallowable: reason };
    if (open !== undefined) {
      open.rules.push(rule);
    } else {
      if (outside === undefined) {
        outside = { table: OUTSIDE_TABLES, rules: [] };
        tables.push(outside);
      }
      outside.rules.push(rule);
    }
    return rule;
  };

  let lineNumber = 0;
  let lastLineEmpty = false;
  for (let start = 0; start <= text.length;) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const next = end + 1;
    lineNumber++;
    lastLineEmpty = end === start;
    if (end === text.length && end === start && lineNumber > 1) break; // the final newline
    let stop = end;
    if (crlf && stop > start && text.charCodeAt(stop - 1) === CR) stop--;

    if (continued !== undefined) {
      // A quoted string goes on: this line is part of the rule, never structure.
      unallowable(continued.chain, asGoSeesIt(text.slice(start, stop)), Unallowable.multiLine);
      if (!quotes.endsQuoted(start, stop, true)) continued = undefined;
      start = next;
      continue;
    }

    const first = start < stop ? text.charCodeAt(start) : LF;
    const blank = first === LF ||
      ((first === SPACE || first === TAB) && isBlank(text, start, stop));
    if (open === undefined && (first === HASH || blank)) {
      start = next;
      continue;
    }
    const lineStart = start;
    const line = text.slice(start, stop);
    start = next;

    if (open === undefined) {
      if (first !== STAR) {
        const rule = unallowable(chainOf(line), line, Unallowable.outside);
        if (line.startsWith("-A ") && quotes.endsQuoted(lineStart, stop, false)) {
          continued = { chain: rule.chain };
        }
        continue;
      }
      const name = line.slice(1);
      tableHeaders++;
      const badName = name === "" || /[\s]/.test(name);
      const twice = seenTables.has(name);
      seenTables.add(name);
      if (!badName && !twice) {
        const known = recentTables.find(text, start, name, crlf);
        if (known !== undefined) {
          tables.push(known.table);
          lineNumber += known.lines;
          lastLineEmpty = false;
          start = known.next;
          continue;
        }
      }
      const unallowableTable = badName
        ? Unallowable.badTable
        : twice
        ? Unallowable.tableTwice
        : KNOWN_TABLE_NAMES.has(name)
        ? undefined
        : Unallowable.unknownTable;
      open = {
        name,
        startLine: lineNumber,
        bodyStart: start,
        chains: new Set(),
        rules: [],
        declaring: true,
        unallowable: unallowableTable,
      };
      if (badName || twice) {
        open.rules.push({ chain: "", text: line, unallowable: unallowableTable });
      }
      lastChain = "";
      continue;
    }

    if (line === "COMMIT") {
      const table = { table: open.name, rules: open.rules };
      tables.push(table);
      if (open.unallowable === undefined) {
        recentTables.remember(
          text,
          open.bodyStart,
          lineStart,
          crlf,
          table,
          lineNumber - open.startLine,
        );
      }
      open = undefined;
      continue;
    }

    if (first === COLON) {
      const declaration = anyDeclaration(line);
      const misplaced = declaration === undefined
        ? Unallowable.badDeclaration
        : !open.declaring
        ? Unallowable.lateDeclaration
        : open.chains.has(declaration.chain)
        ? Unallowable.twiceDeclared
        : declaration.policy !== "-" && !builtIn(open, declaration.chain)
        ? Unallowable.policyOfUserChain
        : undefined;
      if (declaration === undefined || misplaced !== undefined) {
        unallowable(declaration?.chain ?? "", line, misplaced ?? Unallowable.badDeclaration);
        continue;
      }
      const { chain, policy } = declaration;
      open.chains.add(chain);
      const text = policy === "-" ? `-N ${chain}` : `-P ${chain} ${policy}`;
      open.rules.push(
        open.unallowable === undefined
          ? { chain, text }
          : { chain, text, unallowable: open.unallowable },
      );
      continue;
    }

    let rule = line;
    let ruleStart = lineStart;
    if (first === BRACKET) {
      // `iptables-save -c` prefixes each rule with its packet and byte counters.
      const end = rule.indexOf("] ");
      if (end > 0 && COUNTERS.test(rule.slice(0, end + 1))) {
        rule = rule.slice(end + 2);
        ruleStart += end + 2;
      }
    }
    if (!rule.startsWith("-A ")) {
      unallowable("", line, Unallowable.unknownLine);
      continue;
    }
    open.declaring = false;
    let chain: string;
    let problem = open.unallowable;
    const after = 3 + lastChain.length;
    if (
      lastChain !== "" && rule.startsWith(lastChain, 3) &&
      (rule.length === after || rule.charCodeAt(after) === SPACE)
    ) {
      chain = lastChain; // the usual case: the same chain as the line before
    } else {
      chain = chainOf(rule);
      if (chain === "") problem = Unallowable.noChain;
      else if (!open.chains.has(chain)) problem ??= Unallowable.undeclared;
      else lastChain = chain;
    }
    const parsed: Rule = problem === undefined
      ? { chain, text: rule }
      : { chain, text: rule, unallowable: problem };
    open.rules.push(parsed);
    if (quotes.endsQuoted(ruleStart, stop, false)) {
      if (parsed.unallowable === undefined) parsed.unallowable = Unallowable.multiLine;
      continued = { chain };
    }
  }

  if (open !== undefined) {
    tables.push({ table: open.name, rules: open.rules });
    const lastLine = lineNumber > 1 && lastLineEmpty ? lineNumber - 1 : lineNumber;
    return {
      tables,
      tableHeaders,
      truncated: {
        line: lastLine,
        message: `table "${open.name}" (line ${open.startLine}) has no COMMIT at the end; ` +
          `the dump looks truncated`,
      },
    };
  }
  return { tables, tableHeaders };
}

const GO_COUNTERS = /^\[([0-9]+):([0-9]+)\] /;

/**
 * A line as go-iptables hands it to the Go original: a line starting with `[p:b] ` (the
 * counters some iptables-nft versions printed in `-S` output) becomes `REST -c p b`.
 * Only a line inside a quoted string can start so in `-S` output.
 */
function asGoSeesIt(line: string): string {
  const counters = GO_COUNTERS.exec(line);
  if (counters === null) return line;
  return `${line.slice(counters[0].length)} -c ${counters[1]} ${counters[2]}`;
}

/**
 * Whether `chain` is one `table` is born with, so that it may have a policy. In a table
 * whose lines cannot be allowed anyway (a name iptables does not have), any chain may.
 */
function builtIn(table: OpenTable, chain: string): boolean {
  if (table.unallowable !== undefined) return true;
  return BUILTIN_CHAINS[table.name as TableName].includes(chain);
}

/** The chain an `-A CHAIN ...` line names ("" for any other line). */
function chainOf(line: string): string {
  if (!line.startsWith("-A ")) return "";
  const end = line.indexOf(" ", 3);
  return end === -1 ? line.slice(3) : line.slice(3, end);
}
