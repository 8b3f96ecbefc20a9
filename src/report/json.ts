/**
 * The JSON report of `-output json`: a stable contract other tools read (see README).
 *
 * @module
 */

import type { CheckReport } from "../check.ts";

/** The JSON document for one check, with a trailing newline. */
export function formatJsonReport(report: CheckReport): string {
  const document = {
    node: report.node,
    unexpected: report.verdict === "true",
    families: report.families.map(({ family, source, tables }) => ({
      family,
      source,
      tables: tables.map(({ table, rules, unexpected }) => ({ table, rules, unexpected })),
    })),
    errors: report.errors.map((error) => ({
      kind: error.kind,
      family: error.family,
      ...(error.file !== undefined ? { file: error.file } : {}),
      ...(error.line !== undefined ? { line: error.line } : {}),
      ...(error.source !== undefined ? { source: error.source } : {}),
      message: error.message,
    })),
  };
  return JSON.stringify(document, null, 2) + "\n";
}
