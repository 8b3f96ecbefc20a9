import type { CiliumNodeLabels, KubeApi } from "./client.ts";
import type { Clock } from "./clock.ts";
import { KubeApiError } from "./errors.ts";
import type { KubeLogger } from "./logger.ts";
import type { UnexpectedRule } from "./messages.ts";
import { type RetryBudget, withRetries } from "./retry.ts";

/** The label the monitor owns on the node's CiliumNode. */
export const LABEL_KEY = "kubernetes.azure.com/user-iptables-rules";

/** What one check found, as far as reporting cares. */
export interface CheckSummary {
  /** Rules no allowlist pattern matched, in every table that could be read. */
  unexpected: readonly UnexpectedRule[];
  /** Why some table or family could not be read; empty when everything was read. */
  unreadable: readonly string[];
}

/**
 * The label value a check supports. Unexpected rules make `"true"` certain even when
 * some table could not be read; only a complete check may say `"false"`.
 */
export type Verdict = "true" | "false" | "unknown";

/** Fail closed: an incomplete check without unexpected rules is `"unknown"`. */
export function verdictOf(summary: CheckSummary): Verdict {
  if (summary.unexpected.length > 0) return "true";
  return summary.unreadable.length > 0 ? "unknown" : "false";
}

/** What happened to the label in one check. */
export type LabelOutcome =
  /** The server already had this value; nothing was written. */
  | { kind: "unchanged"; value: "true" | "false" }
  /** The label was patched from `previous` (undefined: not set) to `value`. */
  | { kind: "written"; previous: string | undefined; value: "true" | "false" }
  /** The check was incomplete and found nothing unexpected: the label was left alone. */
  | { kind: "withheld"; reasons: readonly string[] }
  /** The CiliumNode does not exist (yet); the next check tries again. */
  | { kind: "missing"; name: string }
  /** An API error; `message` says which request and why. */
  | { kind: "failed"; message: string };

/** What {@linkcode syncLabel} needs. */
export interface LabelContext {
  api: KubeApi;
  /** The CiliumNode carries the node's name. */
  nodeName: string;
  clock: Clock;
  log: KubeLogger;
  /**
   * The CiliumNode as read while the check ran (`NodeReporter.readAhead`), used instead
   * of reading it again when it came back; undefined if that read failed.
   */
  readAhead?: Promise<CiliumNodeLabels | undefined>;
}

/**
 * Makes the label on the server match `verdict`, writing only when it differs: the
 * object is read every check (so a label changed by hand is put back) and patched
 * only on a difference (so a node whose rules do not change writes nothing).
 * Logs the outcome and never throws for API errors.
 */
export async function syncLabel(
  context: LabelContext,
  summary: CheckSummary,
  budget: RetryBudget,
): Promise<LabelOutcome> {
  const { api, nodeName, clock, log } = context;
  const verdict = verdictOf(summary);
  if (verdict === "unknown") {
    log.warning(
      `label ${LABEL_KEY} on CiliumNode ${nodeName} left as it is: no unexpected rules ` +
        `found, but not everything could be read (${summary.unreadable.join("; ")}); ` +
        `"false" is only written after a complete check`,
    );
    return { kind: "withheld", reasons: summary.unreadable };
  }
  try {
    const current = (await context.readAhead) ??
      await withRetries(() => api.getCiliumNode(nodeName), budget, clock, log);
    const previous = current.labels[LABEL_KEY];
    if (previous === verdict) {
      log.v(2).info(`label ${LABEL_KEY}=${verdict} on CiliumNode ${nodeName} is up to date`);
      return { kind: "unchanged", value: verdict };
    }
    await withRetries(
      () => api.patchCiliumNodeLabels(nodeName, { [LABEL_KEY]: verdict }),
      budget,
      clock,
      log,
    );
    log.info(
      `set label ${LABEL_KEY}=${verdict} on CiliumNode ${nodeName} ` +
        `(was ${previous === undefined ? "unset" : `"${previous}"`})`,
    );
    return { kind: "written", previous, value: verdict };
  } catch (error) {
    if (error instanceof KubeApiError && error.notFound) {
      log.warning(
        `CiliumNode ${nodeName} does not exist (Cilium may still be starting); ` +
          `label ${LABEL_KEY}=${verdict} will be set at the next check`,
      );
      return { kind: "missing", name: nodeName };
    }
    const message = error instanceof Error ? error.message : String(error);
    log.error(`label ${LABEL_KEY} not updated: ${message}`);
    return { kind: "failed", message };
  }
}
