/**
 * The text report of `-output text`: a summary a person reads at a glance (one line
 * per family, source and table), then the unexpected rules, the errors and the verdict.
 *
 * @module
 */

import type { CheckError, CheckReport } from "../check.ts";

/**
 * One line for an error: a pattern as `file:line: reason`, a file as `file reason`
 * (its messages read on from the path), a command's error as it stands (it names the
 * command).
 */
export function describeError(error: CheckError): string {
  if (error.kind === "pattern") return `${error.file}:${error.line}: ${error.message}`;
  if (error.file !== undefined) return `${error.file} ${error.message}`;
  return error.message;
}

/**
 * Rule text made safe to print on a terminal or in a log line: control characters,
 * C1 controls and bidirectional overrides are shown as escapes, so that a comment
 * holding `\r` or an escape sequence cannot hide or rewrite what is printed around it.
 * Matching always uses the raw text; only what is shown changes.
 */
export function printable(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      if (c === "\t") return "\\t";
      if (c === "\r") return "\\r";
      if (c === "\n") return "\\n";
      const code = c.charCodeAt(0);
      return code < 0x100
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u${code.toString(16).padStart(4, "0")}`;
    },
  );
}

const VERDICT_TEXT = {
  true: 'user iptables rules found (label "true")',
  false: 'no user iptables rules (label "false")',
  unknown: "undecided: something could not be read, and nothing unexpected was found in the rest",
} as const;

/** The text report for one check, ending in a newline. */
export function formatTextReport(report: CheckReport): string {
  const rows: string[][] = [["FAMILY", "SOURCE", "TABLE", "RULES", "UNEXPECTED"]];
  for (const { family, source, tables } of report.families) {
    if (tables.length === 0) rows.push([family, source, "-", "0", "0"]);
    for (const { table, rules, unexpected } of tables) {
      rows.push([family, source, table, String(rules), String(unexpected.length)]);
    }
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const lines = rows.map((row) =>
    row.map((cell, column) =>
      column >= 3 ? cell.padStart(widths[column]) : cell.padEnd(widths[column])
    ).join("  ").trimEnd()
  );
  const unexpected = report.families.flatMap(({ family, tables }) =>
    tables.flatMap(({ table, unexpected }) =>
      unexpected.map(({ rule, reason }) =>
        `  ${family} ${table.padEnd(8)} ${printable(rule)}${
          reason === undefined ? "" : `  (${reason})`
        }`
      )
    )
  );
  if (unexpected.length > 0) {
    lines.push("", `Unexpected rules (${unexpected.length}):`, ...unexpected);
  }
  if (report.errors.length > 0) {
    lines.push("", `Errors (${report.errors.length}):`);
    for (const error of report.errors) {
      lines.push(`  ${describeError(error)}`);
    }
  }
  const node = report.node === null ? "" : ` on node ${report.node}`;
  lines.push("", `Verdict${node}: ${VERDICT_TEXT[report.verdict]}`);
  return lines.join("\n") + "\n";
}
