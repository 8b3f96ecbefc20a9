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

import { z } from "zod";
import type { Config } from "./cli/config.ts";
import type { Family } from "./iptables/types.ts";
import type { Logger } from "./report/log.ts";

// ---------------------------------------------------------------------------------------
// Parsing the monitor's lines

/** The process that committed one nf_tables transaction, from its `NEWGEN` line. */
export interface Generation {
  genId: number;
  pid: number;
  /** The process's `comm` (at most 15 characters, e.g. `iptables-nft-re`). */
  name: string;
}

/** What one line of `xtables-monitor --event` says. */
export type MonitorLine =
  | { kind: "generation"; generation: Generation }
  /** A rule, chain or table event; `other` is a family iptables-save does not show. */
  | { kind: "event"; family: Family | "other" }
  | { kind: "unknown"; text: string }
  | { kind: "blank" };

const NEWGEN = /^NEWGEN: GENID=(\d+) PID=(\d+) NAME=(.*)$/;
const GenerationFields = z.object({
  genId: z.coerce.number().int().nonnegative(),
  pid: z.coerce.number().int().nonnegative(),
  name: z.string(),
});
/** `-4 -t filter -A ...` (1.8.9) or `iptables -t filter -A ...` (1.8.11 prints commands). */
const RULE_OR_CHAIN = /^-([046]) -t \S/;
const RULE_OR_CHAIN_COMMAND = /^(iptables|ip6tables|arptables|ebtables)(?:-nft)? -t \S/;
/** `nft: NEW table: table filter ip flags 0 use 1 handle 1`. */
const TABLE = /^nft: (?:NEW|DEL) table: table \S+ (\S+)/;
/** A base chain (policy or hook): `# nft: ip filter FORWARD use 0 type filter hook ...`. */
const BASE_CHAIN = /^# nft: (\S+) /;
const EVENT_PREFIX = " EVENT: ";

function familyOfNftName(name: string): Family | "other" {
  if (name === "ip") return "ipv4";
  if (name === "ip6") return "ipv6";
  return "other";
}

function familyOfFlag(flag: string): Family | "other" {
  if (flag === "4" || flag === "iptables") return "ipv4";
  if (flag === "6" || flag === "ip6tables") return "ipv6";
  return "other";
}

/** Classifies one line (without its newline) of `xtables-monitor --event`. */
export function parseMonitorLine(line: string): MonitorLine {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (text.trim() === "") return { kind: "blank" };
  const generation = NEWGEN.exec(text);
  if (generation !== null) {
    const fields = GenerationFields.safeParse({
      genId: generation[1],
      pid: generation[2],
      name: generation[3],
    });
    if (fields.success) return { kind: "generation", generation: fields.data };
    return { kind: "unknown", text };
  }
  if (!text.startsWith(EVENT_PREFIX)) return { kind: "unknown", text };
  const event = text.slice(EVENT_PREFIX.length);
  const flag = RULE_OR_CHAIN.exec(event) ?? RULE_OR_CHAIN_COMMAND.exec(event);
  if (flag !== null) return { kind: "event", family: familyOfFlag(flag[1]) };
  const table = TABLE.exec(event) ?? BASE_CHAIN.exec(event);
  if (table !== null) return { kind: "event", family: familyOfNftName(table[1]) };
  return { kind: "unknown", text };
}

/**
 * Turns the monitor's lines into "re-check" decisions and remembers who changed the
 * ruleset. A line about a scanned family, or one that cannot be classified, is a
 * change; a transaction that touched only other families (ip6tables when only IPv4 is
 * scanned, arptables, nft's own tables) is not. A transaction's events precede its
 * `NEWGEN` line, which names the process and closes it.
 */
export class GenerationTracker {
  readonly #families: ReadonlySet<Family>;
  #pendingRelevant = false;
  #seen: Generation[] = [];

  constructor(families: Iterable<Family>) {
    this.#families = new Set(families);
  }

  /** Feeds one line; returns true when it announces a change worth a re-check. */
  push(line: MonitorLine): boolean {
    switch (line.kind) {
      case "blank":
        return false;
      case "unknown":
        this.#pendingRelevant = true;
        return true;
      case "event": {
        const relevant = line.family !== "other" && this.#families.has(line.family);
        if (relevant) this.#pendingRelevant = true;
        return relevant;
      }
      case "generation":
        if (this.#pendingRelevant) this.#seen.push(line.generation);
        if (this.#seen.length > MAX_REMEMBERED) this.#seen.shift();
        this.#pendingRelevant = false;
        return false;
    }
  }

  /** The relevant transactions seen since the previous call, oldest first; forgets them. */
  take(): Generation[] {
    const seen = this.#seen;
    this.#seen = [];
    return seen;
  }
}

/** Transactions remembered for attribution between two checks. */
const MAX_REMEMBERED = 64;
/** Processes named in one hint. */
const HINT_PROCESSES = 3;

/**
 * Names the processes behind `generations` (latest first, each once), e.g.
 * `last ruleset change seen from PID 19934 (iptables)`; undefined when there are none.
 */
export function describeGenerations(generations: readonly Generation[]): string | undefined {
  const distinct: Generation[] = [];
  for (const generation of [...generations].reverse()) {
    const known = distinct.some((g) => g.pid === generation.pid && g.name === generation.name);
    if (!known) distinct.push(generation);
  }
  if (distinct.length === 0) return undefined;
  const named = distinct.slice(0, HINT_PROCESSES).map((g) => `PID ${g.pid} (${g.name})`);
  const more = distinct.length - named.length;
  if (distinct.length === 1) return `last ruleset change seen from ${named[0]}`;
  return `last ruleset changes seen from ${named.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
}

// ---------------------------------------------------------------------------------------
// Debouncing

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

// ---------------------------------------------------------------------------------------
// The monitor process

/** A running monitor as the supervisor sees it; tests supply fakes. */
export interface MonitorProcess {
  readonly pid: number;
  /** Its stdout, line by line, ending when the pipe closes. */
  readonly lines: AsyncIterable<string>;
  /** Resolves when it has exited and been reaped. */
  readonly status: Promise<{ code: number; signal: string | null }>;
  /** The end of what it wrote to stderr, for error messages. */
  stderrTail(): string;
  kill(signal: Deno.Signal): void;
}

/** Starts `command args`; throws as `Deno.Command.spawn` does when it cannot. */
export type MonitorSpawner = (command: string, args: readonly string[]) => MonitorProcess;

/** A line longer than this is cut (no real event line comes near it). */
const MAX_LINE_CHARS = 64 * 1024;
const STDERR_TAIL_CHARS = 2048;

async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let partial = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    partial += chunk;
    let newline = partial.indexOf("\n");
    while (newline >= 0) {
      yield partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      newline = partial.indexOf("\n");
    }
    if (partial.length > MAX_LINE_CHARS) {
      yield partial.slice(0, MAX_LINE_CHARS);
      partial = "";
    }
  }
  if (partial !== "") yield partial;
}

/** The real spawner: `Deno.Command`, stdin closed, stdout and stderr piped. */
export const spawnMonitor: MonitorSpawner = (command, args) => {
  const child = new Deno.Command(command, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      tail = (tail + chunk).slice(-STDERR_TAIL_CHARS);
    }
  })().catch(() => {});
  return {
    pid: child.pid,
    lines: linesOf(child.stdout),
    status: (async () => {
      const status = await child.status;
      await stderrDone;
      return { code: status.code, signal: status.signal };
    })(),
    stderrTail: () => tail,
    kill(signal) {
      try {
        child.kill(signal);
      } catch {
        // It has exited already.
      }
    },
  };
};

/** The monitor's arguments for the families scanned live. */
export function monitorArguments(families: readonly Family[]): string[] {
  const args = ["--event"];
  const v4 = families.includes("ipv4");
  const v6 = families.includes("ipv6");
  if (v4 && !v6) args.push("-4");
  if (v6 && !v4) args.push("-6");
  return args;
}

/** The families whose rules a check reads from the live ruleset (not from a file). */
export function watchedFamilies(config: Config): Family[] {
  const families: Family[] = [];
  if (config.rulesFile === undefined) families.push("ipv4");
  if (config.ipv6 && config.rulesFile6 === undefined) families.push("ipv6");
  return families;
}

// ---------------------------------------------------------------------------------------
// The supervisor

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

/** What {@linkcode RulesetWatcher} needs. */
export interface WatcherOptions {
  families: readonly Family[];
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
    this.#tracker = new GenerationTracker(options.families);
    this.#args = monitorArguments(options.families);
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
      const upTimer = this.#timers.setTimeout(() => {
        up = true;
        if (!this.#down) return;
        this.#down = false;
        log.info("-watch: xtables-monitor runs again");
        this.#debouncer.notify("the ruleset monitor is back and may have missed changes");
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
      if (status.signal === null && OVERRUN.test(stderr)) {
        log.infoV(
          1,
          "-watch: xtables-monitor fell behind a burst of ruleset changes (its netlink " +
            "buffer overflowed); re-checking and restarting it",
        );
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
  return RulesetWatcher.start({ families, log, intervalSeconds: config.interval });
}
