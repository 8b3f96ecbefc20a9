/**
 * The long-running node agent: a check at start, then one every interval (with a
 * little jitter, so the pods of a DaemonSet do not all scan at once), each reported
 * through {@linkcode Reporting}. SIGTERM or SIGINT (the `stop` signal) ends it within
 * 5 s with exit 0: the save commands under way are killed, retries stop, and a request
 * already sent gets a short grace.
 *
 * @module
 */

import { type CheckReport, FamilyCaches } from "./check.ts";
import type { Config } from "./cli/config.ts";
import { releaseMemory } from "./gc.ts";
import type { Logger } from "./report/log.ts";
import type { PendingReporting, Reporting } from "./reporting.ts";
import { installHealthProbeRoutes } from "./routes.ts";
import { scan } from "./scan.ts";

/** How long shutdown waits for reporting already under way (then it is cut off). */
export const SHUTDOWN_GRACE_MS = 3_000;

/** What the loop needs from outside; tests and -watch add triggers. */
export interface DaemonDeps {
  log: Logger;
  /** Awaited only once the first check is done, so loading it and reading rules overlap. */
  reporting: PendingReporting;
  /** Aborts at SIGTERM or SIGINT (`stop.ts`); the daemon then ends. */
  stop: AbortSignal;
  /** Called after each check (metrics). */
  onCheck?: (report: CheckReport, durationMs: number) => void;
  /**
   * Resolves early, with the reason, to re-check before the interval ends (-watch). Its
   * signal aborts when this wait ends either way, so a stale wait cannot take a trigger.
   */
  nextTrigger?: (signal: AbortSignal) => Promise<string>;
  /** Who changed the ruleset since the previous call, as a hint (-watch); before each check. */
  takeChangeHint?: () => string | undefined;
  random?: () => number;
  /** Called once a check is reported, before the wait: {@linkcode releaseMemory} by default. */
  releaseMemory?: () => void;
}

/** The delay before the next check: the interval, stretched by up to 10 % at random. */
export function jitteredDelayMs(intervalSeconds: number, random: () => number): number {
  return Math.round(intervalSeconds * 1000 * (1 + 0.1 * random()));
}

/** Sleeps `ms` unless `signal` aborts first; resolves with what woke it. */
function sleep(ms: number, signal: AbortSignal): Promise<"timer" | "stop"> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve("stop");
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve("timer");
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve("stop");
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The unexpected rules of a report, as comparable keys. */
function unexpectedKeys(report: CheckReport): Set<string> {
  const keys = new Set<string>();
  for (const { family, tables } of report.families) {
    for (const { table, unexpected } of tables) {
      for (const { rule } of unexpected) keys.add(`${family} ${table} ${rule}`);
    }
  }
  return keys;
}

/**
 * The -watch attribution hint: set when a check that a ruleset change triggered finds
 * new unexpected rules, kept while rules stay unexpected, dropped when none are left.
 */
class ChangeHint {
  #known = new Set<string>();
  #hint: string | undefined;

  /** The hint for this check's report; logs it when it is new. */
  update(report: CheckReport, changedBy: string | undefined, log: Logger): string | undefined {
    const unexpected = unexpectedKeys(report);
    const added = [...unexpected].filter((key) => !this.#known.has(key)).length;
    this.#known = unexpected;
    if (added > 0) {
      this.#hint = changedBy !== undefined ? `hint: ${changedBy}` : undefined;
      if (this.#hint !== undefined) {
        log.info(
          `${added} new unexpected ${added === 1 ? "rule" : "rules"} after a ruleset ` +
            `change (${this.#hint})`,
        );
      }
    }
    if (unexpected.size === 0) this.#hint = undefined;
    return this.#hint;
  }
}

/**
 * Waits for `work`, or, once `stop` aborts, for at most `graceMs` more: a signal stops
 * retries at once, and a request already sent gets a short grace. The listener and its
 * timer go when the wait ends, so frequent checks (-watch) leave nothing behind.
 */
async function untilDoneOrGrace(work: Promise<void>, stop: AbortSignal, graceMs: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onStop = () => {};
  const grace = new Promise<void>((resolve) => {
    onStop = () => (timer = setTimeout(resolve, graceMs));
    stop.addEventListener("abort", onStop, { once: true });
  });
  try {
    await Promise.race([work, grace]);
  } finally {
    stop.removeEventListener("abort", onStop);
    clearTimeout(timer);
  }
}

/**
 * Runs checks until SIGTERM or SIGINT; resolves with the exit code (2 when reporting
 * cannot be set up).
 */
export async function runDaemon(config: Config, deps: DaemonDeps): Promise<number> {
  const { log } = deps;
  let reporting: Reporting | undefined;
  const random = deps.random ?? Math.random;
  const stop = { signal: deps.stop };
  const onSignal = () => log.info("stopping: signal received");
  if (stop.signal.aborted) onSignal();
  else stop.signal.addEventListener("abort", onSignal, { once: true });
  try {
    if (config.installRoutesForHealthProbeReply) {
      const errors = await installHealthProbeRoutes(config.ipv6, undefined, stop.signal);
      if (stop.signal.aborted) return 0;
      for (const error of errors) log.error(`cannot install health probe route: ${error}`);
      if (errors.length > 0) return 2;
      log.info("health probe reply routes are in place");
    }
    const cache = new FamilyCaches();
    const budgetMs = Math.max(5_000, Math.floor(config.interval * 1000 * 0.8));
    const hints = new ChangeHint();
    let early = false;
    while (!stop.signal.aborted) {
      const started = performance.now();
      const changedBy = deps.takeChangeHint?.();
      const report = await scan(config, {
        log,
        cache,
        signal: stop.signal,
        // The first check runs while the client loads (see src/reporting.ts).
        clientLoading: reporting === undefined && !config.dryRun,
      });
      if (stop.signal.aborted) break; // nothing written yet: just go
      if (reporting === undefined) {
        const ready = await deps.reporting;
        if (typeof ready === "string") {
          log.error(ready);
          return 2;
        }
        reporting = ready;
      }
      const reportTo = reporting;
      deps.onCheck?.(report, performance.now() - started);
      // Attribution only for a check a change triggered.
      const hint = hints.update(report, early ? changedBy : undefined, log);
      const budget = { budgetMs, signal: stop.signal };
      await untilDoneOrGrace(
        (async () => {
          await reportTo.reportCheck(report, budget, hint);
          await reportTo.checkBlockedWrites(budget);
        })(),
        stop.signal,
        SHUTDOWN_GRACE_MS,
      );
      if (config.terminateOnSuccess && report.verdict === "false") {
        log.info("no user iptables rules found; exiting as -terminateOnSuccess asks");
        return 0;
      }
      (deps.releaseMemory ?? releaseMemory)();
      const delay = jitteredDelayMs(config.interval, random);
      const waited = new AbortController();
      const done = AbortSignal.any([stop.signal, waited.signal]);
      const woke = deps.nextTrigger
        ? await Promise.race([sleep(delay, done), deps.nextTrigger(done)])
        : await sleep(delay, done);
      waited.abort(); // ends the loser: its timer, or its claim on the next trigger
      early = woke !== "timer" && woke !== "stop";
      if (early) log.infoV(1, `re-checking early: ${woke}`);
    }
    return 0;
  } finally {
    stop.signal.removeEventListener("abort", onSignal);
    // Stopped before the first report: close what the loading made, if it made one.
    const made = reporting ?? await deps.reporting;
    if (typeof made !== "string") await made.close();
  }
}
