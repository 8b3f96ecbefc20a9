import type { Clock } from "./clock.ts";
import { KubeApiError } from "./errors.ts";
import type { KubeLogger } from "./logger.ts";

/**
 * How long the requests of one check may keep retrying: until `deadline` (ms since the
 * epoch), or until `signal` aborts (shutdown). A request already sent is never cut
 * short by either; only new attempts stop.
 */
export interface RetryBudget {
  deadline: number;
  signal?: AbortSignal;
}

/** The first wait after a failure; it doubles with each attempt up to the cap. */
export const FIRST_BACKOFF_MS = 500;
/** The longest wait between attempts that the program chooses itself. */
export const MAX_BACKOFF_MS = 30_000;

/** Exponential backoff with some jitter, so that many nodes do not retry in step. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Runs `attempt` until it succeeds, fails in a way retrying cannot fix (4xx other than
 * 429), or the budget runs out. 429 and 5xx answers, timeouts and broken connections
 * are retried with backoff; a `Retry-After` from the server is honoured, and when it
 * points past the deadline the last error is returned at once instead of waiting.
 * Throws the last {@linkcode KubeApiError}, noting how many attempts were made.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  budget: RetryBudget,
  clock: Clock,
  log: KubeLogger,
): Promise<T> {
  for (let failures = 0;; failures++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof KubeApiError) || !error.retriable) throw error;
      const tries = failures + 1;
      const wait = Math.max(backoffMs(failures), error.retryAfterMs ?? 0);
      const remaining = budget.deadline - clock.now();
      const triesText = tries === 1 ? "1 attempt" : `${tries} attempts`;
      if (budget.signal?.aborted) throw error.withNote(`${triesText}; shutting down`);
      if (wait > remaining) {
        const asked = error.retryAfterMs === undefined
          ? ""
          : `, the server asked to retry after ${Math.ceil(error.retryAfterMs / 1000)} s`;
        throw error.withNote(`${triesText}; no time left in this check${asked}`);
      }
      log.v(2).info(`${error.message}; retrying in ${(wait / 1000).toFixed(1)} s`);
      await clock.sleep(wait, budget.signal);
      if (budget.signal?.aborted) throw error.withNote(`${triesText}; shutting down`);
    }
  }
}
