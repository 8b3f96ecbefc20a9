/**
 * Turning ruleset change notifications into re-checks: a burst becomes one or two
 * checks, a lone change is checked within a fraction of a second.
 *
 * @module
 */

/** The clock and timers the debouncer and the supervisor run on; tests inject theirs. */
export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/** What {@linkcode Timers.setTimeout} returns. */
export type TimerId = ReturnType<typeof setTimeout>;

/** The real clock. */
export const realTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/** How change notifications become re-checks. */
export interface DebounceOptions {
  /** Fire once no change came for this long (trailing debounce). */
  quietMs: number;
  /** ...but at the latest this long after the first change of a burst. */
  maxWaitMs: number;
  /** At least this long between two fires; doubles while changes keep coming. */
  minGapMs: number;
  /** The most the gap grows to under sustained churn. */
  maxGapMs: number;
}

/**
 * The defaults: on a quiet node a lone change is re-checked 0.3 s after it, a burst
 * within 1 s of its start (the 2 s promise leaves room for the check itself). A ruleset
 * that keeps changing (kube-proxy resyncing back to back) is re-checked at gaps growing
 * to 3 s, never once per event or burst: a check costs tens to hundreds of milliseconds
 * of CPU on a big ruleset, and a change made in the middle of the churn still shows on
 * the label within about 4 s (the gap, the check and the API call).
 */
export const DEFAULT_DEBOUNCE: DebounceOptions = {
  quietMs: 300,
  maxWaitMs: 1_000,
  minGapMs: 1_000,
  maxGapMs: 3_000,
};

/**
 * Collapses change notifications into re-check triggers. A trigger that fires while
 * nobody waits (a check is running) is kept and handed to the next waiter at once, so a
 * change made during a check, which that check may have read too early, is checked again.
 */
export class ChangeDebouncer {
  readonly #options: DebounceOptions;
  readonly #timers: Timers;
  #firstAt: number | undefined;
  #lastAt = 0;
  #reasons: string[] = [];
  #lastFireAt = Number.NEGATIVE_INFINITY;
  #gap: number;
  #timer: TimerId | undefined;
  #latched: string | undefined;
  #waiters = new Set<(reason: string) => void>();
  #closed = false;

  constructor(options: DebounceOptions = DEFAULT_DEBOUNCE, timers: Timers = realTimers) {
    this.#options = options;
    this.#timers = timers;
    this.#gap = options.minGapMs;
  }

  /** Records one change; `reason` says what it was, for the log. */
  notify(reason: string): void {
    if (this.#closed) return;
    const now = this.#timers.now();
    if (this.#firstAt === undefined) {
      this.#firstAt = now;
      this.#reasons = [];
    }
    this.#lastAt = now;
    if (this.#reasons.length < 3 && !this.#reasons.includes(reason)) this.#reasons.push(reason);
    this.#schedule(now);
  }

  /** Whether changes are waiting to fire. */
  get pending(): boolean {
    return this.#firstAt !== undefined || this.#latched !== undefined;
  }

  #schedule(now: number): void {
    if (this.#firstAt === undefined) return;
    const { quietMs, maxWaitMs } = this.#options;
    const due = Math.max(
      Math.min(this.#lastAt + quietMs, this.#firstAt + maxWaitMs),
      this.#lastFireAt + this.#gap,
    );
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = this.#timers.setTimeout(() => this.#fire(), Math.max(0, due - now));
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#firstAt === undefined) return;
    const now = this.#timers.now();
    // A burst that began within the gap after the previous fire means the ruleset keeps
    // changing: space the next re-check further out.
    const busy = this.#firstAt - this.#lastFireAt < this.#gap;
    this.#gap = busy ? Math.min(this.#gap * 2, this.#options.maxGapMs) : this.#options.minGapMs;
    this.#lastFireAt = now;
    this.#firstAt = undefined;
    const [first, ...rest] = this.#reasons;
    const reason = rest.length === 0 ? first : `${first} (and ${rest.join(", ")})`;
    if (this.#waiters.size === 0) {
      this.#latched = reason;
      return;
    }
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const resolve of waiters) resolve(reason);
  }

  /**
   * Resolves with the reason of the next trigger (at once when one is kept), or with
   * `"stop"` when `signal` aborts first. Only the waiter of the moment gets a trigger:
   * an aborted wait leaves nothing behind to swallow a later one.
   */
  next(signal: AbortSignal): Promise<string> {
    if (signal.aborted || this.#closed) return Promise.resolve("stop");
    if (this.#latched !== undefined) {
      const reason = this.#latched;
      this.#latched = undefined;
      return Promise.resolve(reason);
    }
    return new Promise((resolve) => {
      const waiter = (reason: string) => {
        signal.removeEventListener("abort", onAbort);
        resolve(reason);
      };
      const onAbort = () => {
        this.#waiters.delete(waiter);
        resolve("stop");
      };
      this.#waiters.add(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Stops all timers; waiters get `"stop"`. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#firstAt = undefined;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const resolve of waiters) resolve("stop");
  }
}
