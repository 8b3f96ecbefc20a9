/**
 * `-watch`: re-checks within seconds of an nf_tables ruleset change instead of waiting
 * for the next `-interval`. The kernel announces every nf_tables transaction to the
 * `NFNLGRP_NFTABLES` netlink group; `xtables-monitor --event` (Debian `iptables`) prints
 * those announcements, each transaction's rule, chain and table events followed by one
 * `NEWGEN: GENID=5 PID=19934 NAME=iptables` line naming the process that committed it.
 * The legacy backend announces nothing: for it the interval stays the only trigger.
 *
 * Getting each event promptly is the hard part. xtables-monitor prints with stdio and
 * never flushes in event mode (iptables 1.8.9, Debian bookworm), so on a pipe glibc
 * buffers its output in 4 KiB blocks: measured here, one `iptables -A` never reaches the
 * pipe (it takes about 40 more rule changes to fill the block), and SIGTERM loses the
 * block. What was measured for one rule change (time from `iptables` exiting to the
 * first byte on our end):
 * - plain pipe: nothing within 3 s, data arrives only in 4 KiB blocks or at exit;
 * - `stdbuf -oL xtables-monitor`: 0.3-0.7 ms. stdbuf preloads coreutils' libstdbuf.so,
 *   whose constructor calls `setvbuf(stdout, NULL, _IOLBF, 0)` before xtables-monitor's
 *   `main`, so every line is written as it is printed. stdbuf execs the monitor: no
 *   extra process, and it is still `xtables-monitor` in `ps`;
 * - `script -q -c` (a pseudo-terminal, so glibc line-buffers by itself): 0.2-5 ms, but
 *   needs util-linux and a pty, and turns newlines into CRLF;
 * - watching the monitor wake up in `/proc/PID/schedstat`: Deno refuses reads of
 *   `/proc/PID` to anything short of `--allow-all`;
 * - an nfnetlink socket of our own: needs `--allow-ffi`, which ends the sandbox.
 * So the watcher runs `stdbuf -oL xtables-monitor --event` (which needs `stdbuf` in
 * `--allow-run` and stdbuf plus libstdbuf.so in the image) and falls back to the plain
 * monitor, with a warning, where stdbuf cannot run: bursts of changes then still fill
 * blocks or overrun the monitor (below), but a single new rule may wait for the interval.
 *
 * Any line the watcher cannot classify counts as a change: a wrong guess costs one
 * check, a missed change costs up to one interval. A burst that outruns the monitor
 * (kube-proxy restoring thousands of rules) overflows its netlink socket; it then exits
 * with "No buffer space available" after flushing what it had, which counts as a change
 * too, and it is restarted at once, before the debounced check reads the rules.
 *
 * Processes: the monitor is killed and awaited on close and before every restart, so it
 * never lingers as a zombie. If the daemon itself is SIGKILLed, the line-buffered monitor
 * dies of SIGPIPE at the next ruleset change it reports (its pipe has no reader); in a
 * container it dies with the daemon, PID 1 of the container's PID namespace.
 *
 * @module
 */

import type { Config } from "../cli/config.ts";
import type { Family } from "../iptables/types.ts";
import type { Logger } from "../report/log.ts";
import { nftViewOn } from "../nft/read.ts";
import {
  ChangeDebouncer,
  type DebounceOptions,
  DEFAULT_DEBOUNCE,
  realTimers,
  type Timers,
} from "./debounce.ts";
import { describeGenerations, GenerationTracker, parseMonitorLine } from "./monitor_line.ts";
import {
  monitorArguments,
  type MonitorProcess,
  type MonitorSpawner,
  spawnMonitor,
  watchedFamilies,
} from "./monitor_process.ts";

/** How long the monitor must have run to count as up (then a restart is announced). */
const UP_AFTER_MS = 1_000;
/** A monitor that ran this long and then ended is restarted without backoff. */
const STABLE_AFTER_MS = 10_000;
/** Restart delay after an overrun or the end of a stable run: before a debounced check. */
const QUICK_RESTART_MS = 100;
/** Backoff after failures: doubles from the first to the last. */
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;
/** How long a closing watcher waits for the monitor to die of SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2_000;
/** stdbuf's own exit codes: it failed (e.g. no libstdbuf.so), cannot or could not exec. */
const STDBUF_FAILED = 125;
const EXEC_FAILED = 126;
const NOT_FOUND = 127;
const OVERRUN = /no buffer space available/i;
/**
 * xtables-monitor 1.8.9 ends with code 3 at the first rule it cannot print as iptables,
 * for instance kube-proxy's nftables-mode rules ("cmp sreg undef"). A node user's rule can
 * cause it, so after a monitor that was up it is a change to check for and a restart at
 * once; one that dies so within a second of starting is restarted with backoff, so that
 * rules churned on purpose cannot make us restart it without pause.
 */
const UNPRINTABLE_RULE = /parsing nftables rule failed/i;
const UNPRINTABLE_RULE_CODE = 3;

/** What {@linkcode RulesetWatcher} needs. */
export interface WatcherOptions {
  families: readonly Family[];
  /** The nft view is on: every nf_tables transaction, of any family, is a change. */
  nftView?: boolean;
  log: Logger;
  /** `-interval`, for the log line that says what happens while the monitor is down. */
  intervalSeconds: number;
  spawn?: MonitorSpawner;
  timers?: Timers;
  debounce?: DebounceOptions;
  /** Backoff bounds after failures; tests shorten them. */
  backoff?: { firstMs: number; maxMs: number };
}

function describeSpawnError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not installed (not found on PATH)";
  if (error instanceof Deno.errors.NotCapable) {
    return "not allowed to run it (it must be named in --allow-run)";
  }
  return error instanceof Error ? error.message : String(error);
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1]?.trim() ?? "";
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Runs `xtables-monitor --event` for as long as the daemon runs, and turns what it
 * reports into re-check triggers ({@linkcode nextTrigger}) and attribution hints
 * ({@linkcode takeChangeHint}). A monitor that cannot start or dies is logged once,
 * the daemon keeps its interval, and the monitor is restarted with backoff.
 */
export class RulesetWatcher {
  readonly #options: WatcherOptions;
  readonly #spawn: MonitorSpawner;
  readonly #timers: Timers;
  readonly #debouncer: ChangeDebouncer;
  readonly #tracker: GenerationTracker;
  readonly #args: string[];
  readonly #backoff: { firstMs: number; maxMs: number };
  readonly #closing = new AbortController();
  #process: MonitorProcess | undefined;
  #stdbuf = true;
  #down = false;
  #starts = 0;
  readonly #done: Promise<void>;

  private constructor(options: WatcherOptions) {
    this.#options = options;
    this.#spawn = options.spawn ?? spawnMonitor;
    this.#timers = options.timers ?? realTimers;
    this.#debouncer = new ChangeDebouncer(options.debounce ?? DEFAULT_DEBOUNCE, this.#timers);
    const everyChange = options.nftView ?? false;
    this.#tracker = new GenerationTracker(options.families, { everyChange });
    this.#args = monitorArguments(options.families, { everyFamily: everyChange });
    this.#backoff = options.backoff ?? { firstMs: FIRST_BACKOFF_MS, maxMs: MAX_BACKOFF_MS };
    this.#done = this.#supervise();
  }

  /** Starts watching `families` at once (the first check runs meanwhile). */
  static start(options: WatcherOptions): RulesetWatcher {
    return new RulesetWatcher(options);
  }

  /** For {@linkcode DaemonDeps.nextTrigger}: resolves with why to re-check early. */
  readonly nextTrigger = (signal: AbortSignal): Promise<string> => this.#debouncer.next(signal);

  /**
   * Who changed the ruleset since the previous call, as a hint (`last ruleset change seen
   * from PID 19934 (iptables)`), or undefined. The daemon calls it before each check.
   */
  readonly takeChangeHint = (): string | undefined => describeGenerations(this.#tracker.take());

  /** How many times a monitor process was started (tests). */
  get starts(): number {
    return this.#starts;
  }

  /** The running monitor's PID, if one runs (tests). */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Kills the monitor, waits until it is reaped, and ends all triggers. */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#debouncer.close();
    this.#process?.kill("SIGTERM");
    const grace = this.#timers.setTimeout(() => this.#process?.kill("SIGKILL"), KILL_GRACE_MS);
    try {
      await this.#done;
    } finally {
      this.#timers.clearTimeout(grace);
    }
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#closing.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const onAbort = () => {
        this.#timers.clearTimeout(timer);
        resolve();
      };
      const timer = this.#timers.setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Logs a failure: the first of a run of failures as a warning, the rest at -v 2. */
  #failed(reason: string): void {
    const { log, intervalSeconds } = this.#options;
    if (this.#down) {
      log.infoV(2, `-watch: ${reason}`);
      return;
    }
    this.#down = true;
    log.warning(
      `-watch: ${reason}; re-checking every ${intervalSeconds} s only until the ruleset ` +
        "monitor runs again (retrying with backoff)",
    );
  }

  /** Starts the monitor: under stdbuf while that works, else plain. */
  #launch(): { process: MonitorProcess; stdbuf: boolean } | { error: string } {
    if (this.#stdbuf) {
      try {
        return {
          process: this.#spawn("stdbuf", ["-oL", "xtables-monitor", ...this.#args]),
          stdbuf: true,
        };
      } catch (error) {
        this.#giveUpStdbuf(describeSpawnError(error));
      }
    }
    try {
      return { process: this.#spawn("xtables-monitor", this.#args), stdbuf: false };
    } catch (error) {
      return { error: `cannot start xtables-monitor: ${describeSpawnError(error)}` };
    }
  }

  #giveUpStdbuf(why: string): void {
    this.#stdbuf = false;
    this.#options.log.warning(
      `-watch: cannot run stdbuf (${why}), so xtables-monitor's output arrives in 4 KiB ` +
        "blocks: bursts of changes are seen at once, a single changed rule possibly only " +
        "at the next -interval",
    );
  }

  async #supervise(): Promise<void> {
    const { log } = this.#options;
    let backoffMs = this.#backoff.firstMs;
    log.info(
      `-watch: re-checking on nf_tables ruleset changes (${
        this.#options.families.join(", ")
      }) seen by xtables-monitor; legacy iptables changes are seen at the -interval only`,
    );
    while (!this.#closing.signal.aborted) {
      const launched = this.#launch();
      if ("error" in launched) {
        this.#failed(launched.error);
        await this.#sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.#backoff.maxMs);
        continue;
      }
      const { process } = launched;
      this.#process = process;
      this.#starts++;
      const startedAt = this.#timers.now();
      let up = false;
      const restarted = this.#starts > 1;
      const upTimer = this.#timers.setTimeout(() => {
        up = true;
        const wasDown = this.#down;
        if (wasDown) {
          this.#down = false;
          log.info("-watch: xtables-monitor runs again");
        }
        // Changes made while no monitor listened (it died, or was starting) are seen only
        // by a check after it listens again. A rule xtables-monitor cannot print ends it.
        if (wasDown || restarted) {
          this.#debouncer.notify("the ruleset monitor is back and may have missed changes");
        }
      }, UP_AFTER_MS);
      let lines = 0;
      const consumed = (async () => {
        for await (const text of process.lines) {
          lines++;
          if (this.#tracker.push(parseMonitorLine(text))) {
            this.#debouncer.notify("nf_tables ruleset changed");
          }
        }
      })().catch(() => {});
      const status = await process.status;
      await consumed;
      this.#tracker.endOfStream();
      this.#timers.clearTimeout(upTimer);
      this.#process = undefined;
      if (this.#closing.signal.aborted) break;

      const lived = this.#timers.now() - startedAt;
      const stderr = lastLine(process.stderrTail());
      if (launched.stdbuf && !up && lines === 0 && status.code === STDBUF_FAILED) {
        this.#giveUpStdbuf(stderr === "" ? "it exited with code 125" : stderr);
        continue;
      }
      const how = status.signal !== null
        ? `was killed by ${status.signal}`
        : `exited with code ${status.code}${stderr === "" ? "" : `: ${stderr}`}`;
      if (up || lines > 0) {
        // It was watching: whatever it did not get to report must be checked for.
        this.#debouncer.notify("the ruleset monitor stopped and may have missed changes");
      }
      // Ends that changes cause, not a broken monitor: re-checked above, restarted at once.
      const expected = up && status.code === UNPRINTABLE_RULE_CODE &&
          UNPRINTABLE_RULE.test(process.stderrTail())
        ? "stopped at a rule it cannot print as iptables (an nft-native rule)"
        : status.signal === null && OVERRUN.test(stderr)
        ? "fell behind a burst of ruleset changes (its netlink buffer overflowed)"
        : undefined;
      if (expected !== undefined) {
        log.infoV(1, `-watch: xtables-monitor ${expected}; re-checking and restarting it`);
        backoffMs = this.#backoff.firstMs;
        await this.#sleep(QUICK_RESTART_MS);
        continue;
      }
      if (lived >= STABLE_AFTER_MS) {
        log.warning(`-watch: xtables-monitor ${how} after ${seconds(lived)}; restarting it`);
        backoffMs = this.#backoff.firstMs;
        await this.#sleep(QUICK_RESTART_MS);
        continue;
      }
      const reason = status.code === NOT_FOUND && launched.stdbuf
        ? "cannot start xtables-monitor: not installed (stdbuf did not find it)"
        : status.code === EXEC_FAILED && launched.stdbuf
        ? "cannot start xtables-monitor: stdbuf could not execute it"
        : `xtables-monitor ${how} after ${seconds(lived)}`;
      this.#failed(reason);
      await this.#sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, this.#backoff.maxMs);
    }
  }
}

/**
 * The watcher `-watch` asks for, or undefined (with a log line) when every family is
 * read from a `-rulesFile` and there is nothing live to watch.
 */
export function startWatcher(config: Config, log: Logger): RulesetWatcher | undefined {
  const families = watchedFamilies(config);
  if (families.length === 0) {
    log.warning("-watch has nothing to watch: every family is read from a -rulesFile");
    return undefined;
  }
  return RulesetWatcher.start({
    families,
    nftView: nftViewOn(config),
    log,
    intervalSeconds: config.interval,
  });
}
