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

function isBlank(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09) return false;
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
 */
export function parseIptablesSave(text: string): ParseResult {
  const lines = text.split("\n");
  const tables: TableRules[] = [];
  const seenTables = new Set<string>();
  let open: OpenTable | undefined;

  const fail = (line: number, message: string): ParseResult => ({ ok: false, line, message });

  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    let line = lines[index];
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.includes("\0")) {
      return fail(lineNumber, "binary content (a NUL byte); this is not an iptables-save dump");
    }
    if (isBlank(line) || line.startsWith("#")) continue;

    if (line.startsWith("*")) {
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
      open = { name, startLine: lineNumber, chains: new Set(), rules: [] };
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

    if (line.startsWith(":")) {
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
      if (open.chains.has(chain)) {
        return fail(lineNumber, `chain "${chain}" is declared twice in table "${open.name}"`);
      }
      open.chains.add(chain);
      open.rules.push({ chain, text: policy === "-" ? `-N ${chain}` : `-P ${chain} ${policy}` });
      continue;
    }

    if (line === "COMMIT") {
      tables.push({ table: open.name, rules: open.rules });
      open = undefined;
      continue;
    }

    let rule = line;
    if (rule.startsWith("[")) {
      // `iptables-save -c` prefixes each rule with its packet and byte counters.
      const end = rule.indexOf("] ");
      if (end > 0 && COUNTERS.test(rule.slice(0, end + 1))) rule = rule.slice(end + 2);
    }
    if (rule.startsWith("-A ")) {
      const chainEnd = rule.indexOf(" ", 3);
      const chain = chainEnd === -1 ? rule.slice(3) : rule.slice(3, chainEnd);
      if (chain === "") return fail(lineNumber, `rule without a chain: ${excerpt(line)}`);
      if (!open.chains.has(chain)) {
        return fail(
          lineNumber,
          `rule for chain "${chain}", which table "${open.name}" does not declare`,
        );
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
    const lastLine = lines.length > 1 && lines[lines.length - 1] === ""
      ? lines.length - 1
      : lines.length;
    return fail(
      lastLine,
      `table "${open.name}" (line ${open.startLine}) has no COMMIT at the end; the dump looks truncated`,
    );
  }
  return { ok: true, tables };
}
