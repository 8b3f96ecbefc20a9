import { READ_ERROR_KINDS } from "../check.ts";
import type { Family } from "../iptables/types.ts";
import type { CheckSummary } from "./label.ts";
import type { UnexpectedRule } from "./messages.ts";

/** The parts of a check report (`src/check.ts`) that reporting reads. */
export interface CheckReportShape {
  families: readonly {
    family: Family;
    tables: readonly { table: string; unexpected: readonly { chain: string; rule: string }[] }[];
  }[];
  errors: readonly {
    kind: string;
    family: Family;
    file?: string;
    source?: string;
    message: string;
  }[];
}

/** What reporting needs from a check report: the unexpected rules and what was unread. */
export function summaryOf(report: CheckReportShape): CheckSummary {
  const unexpected: UnexpectedRule[] = [];
  for (const { family, tables } of report.families) {
    for (const { table, unexpected: rules } of tables) {
      for (const { chain, rule } of rules) unexpected.push({ family, table, chain, rule });
    }
  }
  const unreadable = report.errors
    .filter((error) => READ_ERROR_KINDS.has(error.kind))
    .map((error) => {
      const where = error.source ?? error.file;
      return `${error.family}${where === undefined ? "" : ` ${where}`}: ${error.message}`;
    });
  return { unexpected, unreadable };
}
