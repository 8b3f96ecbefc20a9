/** The `-output json` contract (README, Reports), checked as the boundary it is. */

import { z } from "zod";

/** The JSON report of one `-once` check. */
export const ReportSchema = z.object({
  node: z.string().nullable(),
  unexpected: z.boolean(),
  families: z.array(z.object({
    family: z.enum(["ipv4", "ipv6"]),
    source: z.string(),
    tables: z.array(z.object({
      table: z.string(),
      rules: z.number().int().nonnegative(),
      unexpected: z.array(
        z.object({ chain: z.string(), rule: z.string(), reason: z.string().optional() }),
      ),
    })),
  })),
  errors: z.array(z.object({ kind: z.string(), message: z.string() }).passthrough()),
});

/** A parsed JSON report. */
export type Report = z.infer<typeof ReportSchema>;
