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
  chains: Set<string>;
  rules: Rule[];
  /** Whether only declarations were seen so far (they come before every rule). */
  declaring: boolean;
  /** Why no line of this table can be allowlisted (its name), if so. */
  unallowable: string | undefined;
  /** The body's physical lines as read (a trailing `\r` kept), to remember the table by. */
  lines: string[] | undefined;
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
  /** Its body's physical lines, from the line after `*name` to its `COMMIT` line. */
  lines: readonly string[];
  table: TableRules;
  /**
   * Whether every line found its place: then the counters of its declarations are in
   * none of its rules, and a body that differs from it only there reads the same.
   */
  countersUnused: boolean;
}

/** The most tables of one name remembered: one per backend and family that has it. */
const KNOWN_PER_NAME = 4;
/** The most tables remembered in all. */
const KNOWN_TOTAL = 32;

/**
 * The tables of the last dumps parsed. A daemon reads the same rules check after check;
 * a table whose body is unchanged (chain counters aside) is handed back as it was parsed
 * before, so an unchanged ruleset costs a comparison of its lines, not a parse, and
 * builds no new objects. Parsed tables are shared, so callers must not change them.
 *
 * Sound because a table's parse depends only on its name, its body's lines and the
 * dump's line ends: a body that repeats a remembered one line for line, up to that
 * one's `COMMIT` line, parses the same way. The lines are mostly the very strings the
 * rules hold, so remembering them costs little more than the rules.
 */
class KnownTables {
  #tables: KnownTable[] = [];

  /** The remembered tables named `name` read with the same line ends, most recent first. */
  candidates(name: string, crlf: boolean): KnownTable[] {
    return this.#tables.filter((known) => known.name === name && known.crlf === crlf);
  }

  /** Marks `known` as just used. */
  used(known: KnownTable): void {
    const index = this.#tables.indexOf(known);
    if (index > 0) {
      this.#tables.splice(index, 1);
      this.#tables.unshift(known);
    }
  }

  /** Remembers a table just parsed. */
  remember(known: KnownTable): void {
    this.#tables.unshift(known);
    let sameName = 0;
    this.#tables = this.#tables.filter((table, i) =>
      i < KNOWN_TOTAL && (table.name !== known.name || ++sameName <= KNOWN_PER_NAME)
    );
  }
}

const recentTables = new KnownTables();

/**
 * Whether a declaration line of a body matches a remembered one: the same text, or the
 * same chain and policy with other packet and byte counters.
 */
function sameDeclaration(known: string, line: string, crlf: boolean): boolean {
  const a = canonicalDeclaration(crlf ? withoutCR(known) : known);
  const b = canonicalDeclaration(crlf ? withoutCR(line) : line);
  return a !== undefined && b !== undefined && a.chain === b.chain && a.policy === b.policy;
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
  const parser = new SaveParser();
  parser.feed(text);
  return parser.finish();
}

/** A table being compared with remembered ones instead of parsed (see {@linkcode KnownTables}). */
interface Replay {
  /** The remembered tables whose lines the body repeats so far. */
  candidates: KnownTable[];
  /** How many body lines matched. */
  matched: number;
  /** Whether every body line so far was a declaration. */
  declaring: boolean;
  /** Declaration lines that matched only with other counters: their text as read now. */
  recounted: Map<number, string>;
}

/**
 * {@linkcode parseIptablesSave} for a dump that arrives in pieces, as a save command
 * prints it: each piece is parsed as it comes (only a line cut by the end of a piece
 * waits for the next), so the dump is never held whole. Feed it the pieces in order,
 * split anywhere, then call `finish` once.
 */
export class SaveParser {
  /** Whether tables are remembered and reused across parses ({@linkcode KnownTables}). */
  readonly #reuse: boolean;
  #tables: TableRules[] = [];
  #seenTables = new Set<string>();
  #open: OpenTable | undefined;
  #outside: TableRules | undefined;
  #tableHeaders = 0;
  /** The chain of the previous `-A` line of the open table ("" when none). */
  #lastChain = "";
  /** The rule whose quoted string is still open at the end of the previous line. */
  #continued: { chain: string } | undefined;
  /** Whether the dump's first line ends in `\r\n`; known once that line is complete. */
  #crlf: boolean | undefined;
  #lineNumber = 0;
  #lastLineEmpty = false;
  /** The text after the last newline fed so far, in the pieces it came in. */
  #pending: string[] = [];
  #replay: Replay | undefined;

  /** `reuse: false` parses without consulting or filling the memory of recent tables. */
  constructor(options: { reuse?: boolean } = {}) {
    this.#reuse = options.reuse ?? true;
  }

  /** Parses the lines `text` completes; keeps an unfinished last line for later. */
  feed(text: string): void {
    const lastNewline = text.lastIndexOf("\n");
    if (lastNewline === -1) {
      if (text !== "") this.#pending.push(text);
      return;
    }
    let whole = text;
    let end = lastNewline;
    if (this.#pending.length > 0) {
      const before = this.#pending.join("");
      this.#pending = [];
      whole = before + text;
      end += before.length;
    }
    const quotes = new QuoteScanner(whole);
    for (let start = 0; start <= end;) {
      const newline = whole.indexOf("\n", start);
      this.#physicalLine(whole, start, newline, quotes, true);
      start = newline + 1;
    }
    if (end + 1 < whole.length) this.#pending.push(whole.slice(end + 1));
  }

  /** Parses what is left (a last line without a newline) and returns the whole result. */
  finish(): ParseResult {
    const last = this.#pending.join("");
    this.#pending = [];
    this.#physicalLine(last, 0, last.length, new QuoteScanner(last), false);
    const open = this.#open;
    if (this.#replay !== undefined) this.#stopReplay();
    if (open !== undefined) {
      const tables = this.#tables;
      tables.push({ table: open.name, rules: open.rules });
      const lineNumber = this.#lineNumber;
      const lastLine = lineNumber > 1 && this.#lastLineEmpty ? lineNumber - 1 : lineNumber;
      return {
        tables,
        tableHeaders: this.#tableHeaders,
        truncated: {
          line: lastLine,
          message: `table "${open.name}" (line ${open.startLine}) has no COMMIT at the end; ` +
            `the dump looks truncated`,
        },
      };
    }
    return { tables: this.#tables, tableHeaders: this.#tableHeaders };
  }

  /**
   * One physical line, `text[start, end)`; `complete` when a newline ends it (the last
   * line of a dump may have none; an empty one after the final newline is no line).
   */
  #physicalLine(
    text: string,
    start: number,
    end: number,
    quotes: QuoteScanner,
    complete: boolean,
  ): void {
    this.#lineNumber++;
    this.#lastLineEmpty = end === start;
    if (!complete && end === start && this.#lineNumber > 1) return; // the final newline
    if (this.#crlf === undefined) {
      this.#crlf = complete && end > start && text.charCodeAt(end - 1) === CR;
    }
    if (this.#replay !== undefined) this.#replayLine(text, start, end, quotes);
    else this.#line(text, start, end, quotes);
  }

  /** Keeps a line that cannot be allowlisted, in the open table or outside any. */
  #unallowable(chain: string, line: string, reason: string): Rule {
    const rule: Rule = { chain, text: line, unallowable: reason };
    if (this.#open !== undefined) {
      this.#open.rules.push(rule);
    } else {
      if (this.#outside === undefined) {
        this.#outside = { table: OUTSIDE_TABLES, rules: [] };
        this.#tables.push(this.#outside);
      }
      this.#outside.rules.push(rule);
    }
    return rule;
  }

  /** A body line of a table that may repeat a remembered one: compared, not parsed. */
  #replayLine(text: string, start: number, end: number, quotes: QuoteScanner): void {
    const replay = this.#replay!;
    const crlf = this.#crlf === true;
    const at = replay.matched;
    const declaration = replay.declaring && start < end && text.charCodeAt(start) === COLON;
    let recounted: string | undefined;
    const candidates = replay.candidates;
    let alive: KnownTable[] | undefined; // undefined while every candidate matches
    for (let i = 0; i < candidates.length; i++) {
      const line = candidates[i].lines[at];
      let same = line.length === end - start && text.startsWith(line, start);
      if (!same && declaration && line.charCodeAt(0) === COLON) {
        recounted ??= text.slice(start, end);
        same = sameDeclaration(line, recounted, crlf);
      }
      if (same) alive?.push(candidates[i]);
      else alive ??= candidates.slice(0, i);
    }
    if (alive?.length === 0) {
      this.#stopReplay();
      this.#line(text, start, end, quotes);
      return;
    }
    if (alive !== undefined) replay.candidates = alive;
    if (recounted !== undefined) replay.recounted.set(at, recounted);
    let done: KnownTable | undefined;
    for (const known of replay.candidates) {
      if (known.lines.length === at + 1) done = known;
    }
    if (done !== undefined && replay.recounted.size > 0 && !done.countersUnused) {
      // A line that cannot be allowlisted holds a declaration, counters and all: parse.
      this.#stopReplay();
      this.#line(text, start, end, quotes);
      return;
    }
    replay.declaring = declaration;
    replay.matched++;
    if (done !== undefined) {
      // Its COMMIT line: the body repeats a remembered one, which is handed back.
      recentTables.used(done);
      this.#tables.push(done.table);
      this.#replay = undefined;
      this.#open = undefined;
    }
  }

  /** Parses the body lines a replay matched so far: they are a remembered table's. */
  #stopReplay(): void {
    const replay = this.#replay!;
    this.#replay = undefined;
    const lines = replay.candidates[0].lines;
    for (let i = 0; i < replay.matched; i++) {
      const line = replay.recounted.get(i) ?? lines[i];
      this.#line(line, 0, line.length, new QuoteScanner(line));
    }
  }

  /** One line parsed: `text[start, end)`, without its newline. */
  #line(text: string, start: number, end: number, quotes: QuoteScanner): void {
    const crlf = this.#crlf === true;
    let stop = end;
    if (crlf && stop > start && text.charCodeAt(stop - 1) === CR) stop--;

    if (this.#continued !== undefined) {
      // A quoted string goes on: this line is part of the rule, never structure.
      const line = text.slice(start, stop);
      this.#open?.lines?.push(stop === end ? line : text.slice(start, end));
      this.#unallowable(this.#continued.chain, asGoSeesIt(line), Unallowable.multiLine);
      if (!quotes.endsQuoted(start, stop, true)) this.#continued = undefined;
      return;
    }

    const first = start < stop ? text.charCodeAt(start) : LF;
    let open = this.#open;
    const blank = first === LF ||
      ((first === SPACE || first === TAB) && isBlank(text, start, stop));
    if (open === undefined && (first === HASH || blank)) return;
    const line = text.slice(start, stop);
    open?.lines?.push(stop === end ? line : text.slice(start, end));

    if (open === undefined) {
      if (first !== STAR) {
        const rule = this.#unallowable(chainOf(line), line, Unallowable.outside);
        if (line.startsWith("-A ") && quotes.endsQuoted(start, stop, false)) {
          this.#continued = { chain: rule.chain };
        }
        return;
      }
      const name = line.slice(1);
      this.#tableHeaders++;
      const badName = name === "" || /[\s]/.test(name);
      const twice = this.#seenTables.has(name);
      this.#seenTables.add(name);
      const unallowableTable = badName
        ? Unallowable.badTable
        : twice
        ? Unallowable.tableTwice
        : KNOWN_TABLE_NAMES.has(name)
        ? undefined
        : Unallowable.unknownTable;
      open = this.#open = {
        name,
        startLine: this.#lineNumber,
        chains: new Set(),
        rules: [],
        declaring: true,
        unallowable: unallowableTable,
        lines: unallowableTable === undefined && this.#reuse ? [] : undefined,
      };
      if (badName || twice) {
        open.rules.push({ chain: "", text: line, unallowable: unallowableTable });
      }
      this.#lastChain = "";
      if (this.#reuse && !badName && !twice) {
        const candidates = recentTables.candidates(name, crlf);
        if (candidates.length > 0) {
          this.#replay = { candidates, matched: 0, declaring: true, recounted: new Map() };
        }
      }
      return;
    }

    if (line === "COMMIT") {
      const table = { table: open.name, rules: open.rules };
      this.#tables.push(table);
      if (open.lines !== undefined && this.#reuse) {
        const countersUnused = open.rules.every((rule) => rule.unallowable === undefined);
        recentTables.remember({ name: open.name, crlf, lines: open.lines, table, countersUnused });
      }
      this.#open = undefined;
      return;
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
        this.#unallowable(
          declaration?.chain ?? "",
          line,
          misplaced ?? Unallowable.badDeclaration,
        );
        return;
      }
      const { chain, policy } = declaration;
      open.chains.add(chain);
      const text = policy === "-" ? `-N ${chain}` : `-P ${chain} ${policy}`;
      open.rules.push(
        open.unallowable === undefined
          ? { chain, text }
          : { chain, text, unallowable: open.unallowable },
      );
      return;
    }

    let rule = line;
    let ruleStart = start;
    if (first === BRACKET) {
      // `iptables-save -c` prefixes each rule with its packet and byte counters.
      const end = rule.indexOf("] ");
      if (end > 0 && COUNTERS.test(rule.slice(0, end + 1))) {
        rule = rule.slice(end + 2);
        ruleStart += end + 2;
      }
    }
    if (!rule.startsWith("-A ")) {
      this.#unallowable("", line, Unallowable.unknownLine);
      return;
    }
    open.declaring = false;
    let chain: string;
    let problem = open.unallowable;
    const lastChain = this.#lastChain;
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
      else this.#lastChain = chain;
    }
    const parsed: Rule = problem === undefined
      ? { chain, text: rule }
      : { chain, text: rule, unallowable: problem };
    open.rules.push(parsed);
    if (quotes.endsQuoted(ruleStart, stop, false)) {
      if (parsed.unallowable === undefined) parsed.unallowable = Unallowable.multiLine;
      this.#continued = { chain };
    }
  }
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
