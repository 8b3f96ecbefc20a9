/**
 * Unit tests of `-watch`: what the monitor's lines mean, how changes become re-checks
 * (on an injected clock), and how the monitor process is supervised (with a fake
 * spawner: start failures, stdbuf fallback, overruns, backoff, close).
 */
import assert from "node:assert/strict";
import type { Logger, VerboseLogger } from "../src/report/log.ts";
import { EVENT_MESSAGE_LIMIT, unexpectedRulesMessage } from "../src/kube/messages.ts";
import {
  ChangeDebouncer,
  type DebounceOptions,
  DEFAULT_DEBOUNCE,
  type TimerId,
  type Timers,
} from "../src/watch/debounce.ts";
import {
  describeGenerations,
  GenerationTracker,
  parseMonitorLine,
} from "../src/watch/monitor_line.ts";
import {
  monitorArguments,
  type MonitorProcess,
  type MonitorSpawner,
} from "../src/watch/monitor_process.ts";
import { RulesetWatcher } from "../src/watch/watcher.ts";

// ---------------------------------------------------------------------------------------
// Helpers

/** A manual clock: time moves only in {@linkcode advance}, running due timers in order. */
class FakeClock implements Timers {
  #now = 0;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerId {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return id as unknown as TimerId;
  }

  clearTimeout(id: TimerId): void {
    this.#timers.delete(id as unknown as number);
  }

  /** Delays of the timers now pending, from now. */
  pending(): number[] {
    return [...this.#timers.values()].map((timer) => timer.at - this.#now).sort((a, b) => a - b);
  }

  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      let dueId: number | undefined;
      let dueAt = Number.POSITIVE_INFINITY;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= end && timer.at < dueAt) [dueId, dueAt] = [id, timer.at];
      }
      if (dueId === undefined) break;
      const timer = this.#timers.get(dueId)!;
      this.#timers.delete(dueId);
      this.#now = timer.at;
      timer.callback();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets every pending promise continuation run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

interface LogRecord {
  severity: "I" | "W" | "E";
  level: number;
  message: string;
}

function recordingLogger(verbosity = 9): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const v = (level: number): VerboseLogger => ({
    enabled: level <= verbosity,
    info: (message) => {
      if (level <= verbosity) records.push({ severity: "I", level, message });
    },
  });
  return {
    records,
    verbosity,
    info: (message) => records.push({ severity: "I", level: 0, message }),
    warning: (message) => records.push({ severity: "W", level: 0, message }),
    error: (message) => records.push({ severity: "E", level: 0, message }),
    v,
    infoV: (level, message) => v(level).info(message),
  };
}

/** A monitor process driven by the test. */
class FakeProcess implements MonitorProcess {
  static #pids = 1000;
  readonly pid = FakeProcess.#pids++;
  readonly killedWith: Deno.Signal[] = [];
  #queue: string[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #stderr = "";
  #resolveStatus!: (status: { code: number; signal: string | null }) => void;
  readonly status = new Promise<{ code: number; signal: string | null }>((resolve) => {
    this.#resolveStatus = resolve;
  });

  constructor(readonly command: string, readonly args: readonly string[]) {}

  get lines(): AsyncIterable<string> {
    return { [Symbol.asyncIterator]: () => this.#read() };
  }

  async *#read(): AsyncGenerator<string> {
    for (;;) {
      while (this.#queue.length > 0) yield this.#queue.shift()!;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  get ended(): boolean {
    return this.#ended;
  }

  emit(...lines: string[]): void {
    this.#queue.push(...lines);
    this.#wake?.();
  }

  exit(code: number, signal: string | null = null, stderr = ""): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stderr = stderr;
    this.#wake?.();
    this.#resolveStatus({ code, signal });
  }

  stderrTail(): string {
    return this.#stderr;
  }

  kill(signal: Deno.Signal): void {
    this.killedWith.push(signal);
    this.exit(128 + 15, signal);
  }
}

/** A spawner whose behaviour per command the test decides; records every process. */
function fakeSpawner(
  behaviour: (command: string) => "spawn" | Error,
): { spawn: MonitorSpawner; processes: FakeProcess[]; attempts: string[] } {
  const processes: FakeProcess[] = [];
  const attempts: string[] = [];
  return {
    processes,
    attempts,
    spawn(command, args) {
      attempts.push(command);
      const outcome = behaviour(command);
      if (outcome instanceof Error) throw outcome;
      const process = new FakeProcess(command, args);
      processes.push(process);
      return process;
    },
  };
}

const FAST: DebounceOptions = { quietMs: 300, maxWaitMs: 1_000, minGapMs: 1_000, maxGapMs: 8_000 };

function never(): AbortSignal {
  return new AbortController().signal;
}

/** Collects what `next` resolves with, without blocking the test. */
function track(promise: Promise<string>): { value: string | undefined } {
  const box: { value: string | undefined } = { value: undefined };
  promise.then((value) => (box.value = value));
  return box;
}

// ---------------------------------------------------------------------------------------
// Parsing

Deno.test("parseMonitorLine: the lines of xtables-monitor 1.8.9 --event", () => {
  const cases: [string, unknown][] = [
    [" EVENT: -4 -t filter -A INPUT -s 1.2.3.5/32 -j DROP", { kind: "event", family: "ipv4" }],
    [" EVENT: -6 -t filter -A INPUT -s ::2/128 -j DROP", { kind: "event", family: "ipv6" }],
    [" EVENT: -4 -t filter -N BAR", { kind: "event", family: "ipv4" }],
    [" EVENT: -0 -t filter -A INPUT -j ACCEPT", { kind: "event", family: "other" }],
    [
      " EVENT: nft: NEW table: table mangle ip flags 0 use 1 handle 1",
      { kind: "event", family: "ipv4" },
    ],
    [
      " EVENT: nft: DEL table: table filter ip6 flags 0 use 0 handle 3",
      { kind: "event", family: "ipv6" },
    ],
    [
      " EVENT: # nft: ip filter FORWARD use 0 type filter hook forward prio 0 policy drop " +
      "packets 0 bytes 0 flags 1",
      { kind: "event", family: "ipv4" },
    ],
    [
      " EVENT: # nft: arp filter INPUT use 1 type filter hook input prio 0 policy accept",
      { kind: "event", family: "other" },
    ],
    [
      "NEWGEN: GENID=5 PID=19934 NAME=iptables",
      { kind: "generation", generation: { genId: 5, pid: 19934, name: "iptables" } },
    ],
    [
      "NEWGEN: GENID=9 PID=891 NAME=iptables-nft-re\r",
      { kind: "generation", generation: { genId: 9, pid: 891, name: "iptables-nft-re" } },
    ],
    [
      "NEWGEN: GENID=10 PID=7 NAME=my tool",
      { kind: "generation", generation: { genId: 10, pid: 7, name: "my tool" } },
    ],
    ["", { kind: "blank" }],
    ["\r", { kind: "blank" }],
  ];
  for (const [line, expected] of cases) {
    assert.deepEqual(parseMonitorLine(line), expected, JSON.stringify(line));
  }
});

Deno.test("parseMonitorLine: later versions' command form, and what it cannot place", () => {
  assert.deepEqual(
    parseMonitorLine(" EVENT: iptables -t nat -A POSTROUTING -j MASQUERADE"),
    { kind: "event", family: "ipv4" },
  );
  assert.deepEqual(
    parseMonitorLine(" EVENT: ip6tables -t filter -D INPUT -j ACCEPT"),
    { kind: "event", family: "ipv6" },
  );
  assert.deepEqual(
    parseMonitorLine(" EVENT: ebtables -t filter -A INPUT -j ACCEPT"),
    { kind: "event", family: "other" },
  );
  for (const line of [" EVENT: something new", "cannot receive", "NEWGEN: GENID=x PID=1 NAME=a"]) {
    assert.equal(parseMonitorLine(line).kind, "unknown", line);
  }
});

Deno.test("GenerationTracker: changes of scanned families count, others do not", () => {
  const tracker = new GenerationTracker(["ipv4"]);
  const push = (line: string) => tracker.push(parseMonitorLine(line));
  assert.equal(push(" EVENT: -6 -t filter -A INPUT -j ACCEPT"), false);
  assert.equal(push("NEWGEN: GENID=2 PID=10 NAME=ip6tables"), false);
  assert.equal(push(" EVENT: -0 -t filter -A INPUT -j ACCEPT"), false);
  assert.equal(push("NEWGEN: GENID=3 PID=11 NAME=arptables-nft"), false);
  assert.equal(push("NEWGEN: GENID=4 PID=12 NAME=nft"), false, "a bare NEWGEN: other families");
  assert.deepEqual(tracker.take(), [], "no relevant transaction to attribute");
  assert.equal(push(" EVENT: -4 -t filter -A INPUT -s 1.2.3.4/32 -j DROP"), true);
  assert.equal(push("NEWGEN: GENID=5 PID=19934 NAME=iptables"), false);
  assert.equal(push(" garbage we cannot read"), true, "unknown lines count as changes");
  assert.equal(push("NEWGEN: GENID=6 PID=20000 NAME=kube-proxy"), false);
  assert.deepEqual(tracker.take().map((g) => g.genId), [5, 6]);
  assert.deepEqual(tracker.take(), [], "taken once");

  const both = new GenerationTracker(["ipv4", "ipv6"]);
  assert.equal(both.push(parseMonitorLine(" EVENT: -6 -t filter -A INPUT -j ACCEPT")), true);
});

Deno.test("GenerationTracker with the nft view: every transaction counts, once", () => {
  // What xtables-monitor printed for native nft changes (nft 1.0.6, iptables 1.8.9).
  const tracker = new GenerationTracker(["ipv4"], { everyChange: true });
  const push = (line: string) => tracker.push(parseMonitorLine(line));
  assert.equal(push(" EVENT: nft: NEW table: table nd netdev flags 0 use 0 handle 4"), true);
  assert.equal(push("NEWGEN: GENID=8 PID=11490 NAME=nft"), false, "announced by its event");
  assert.equal(push(" EVENT: # nft: netdev nd c use 0"), true);
  assert.equal(push("NEWGEN: GENID=9 PID=11492 NAME=nft"), false);
  assert.equal(push(" EVENT: -6 -t filter -A INPUT -j ACCEPT"), true, "ip6 counts too");
  assert.equal(push("NEWGEN: GENID=10 PID=11493 NAME=ip6tables"), false);
  // A set element: no event line, only the transaction's NEWGEN.
  assert.equal(push("NEWGEN: GENID=13 PID=11509 NAME=nft"), true);
  assert.deepEqual(tracker.take().map((g) => g.genId), [8, 9, 10, 13]);
});

Deno.test("GenerationTracker: a monitor that died mid-transaction does not swallow the next one", () => {
  const tracker = new GenerationTracker(["ipv4"], { everyChange: true });
  const push = (line: string) => tracker.push(parseMonitorLine(line));
  // xtables-monitor 1.8.9 ends at a kube-proxy nftables-mode rule, before the NEWGEN line.
  assert.equal(push(" EVENT: -4 -t kube-proxy -N services"), true);
  tracker.endOfStream();
  // The next monitor's first line: a set element added, which prints only its NEWGEN.
  assert.equal(push("NEWGEN: GENID=20 PID=30219 NAME=nft"), true);
  // Without the nft view, the same NEWGEN is no change of a scanned family.
  const plain = new GenerationTracker(["ipv4"]);
  plain.push(parseMonitorLine(" EVENT: -4 -t filter -A INPUT -j DROP"));
  plain.endOfStream();
  assert.equal(plain.push(parseMonitorLine("NEWGEN: GENID=21 PID=30220 NAME=nft")), false);
});

Deno.test("describeGenerations: the latest processes first, each once, at most three", () => {
  assert.equal(describeGenerations([]), undefined);
  assert.equal(
    describeGenerations([{ genId: 5, pid: 19934, name: "iptables" }]),
    "last ruleset change seen from PID 19934 (iptables)",
  );
  const many = [
    { genId: 1, pid: 1, name: "a" },
    { genId: 2, pid: 2, name: "b" },
    { genId: 3, pid: 1, name: "a" },
    { genId: 4, pid: 3, name: "c" },
    { genId: 5, pid: 4, name: "d" },
  ];
  assert.equal(
    describeGenerations(many),
    "last ruleset changes seen from PID 4 (d), PID 3 (c), PID 1 (a) and 1 more",
  );
});

Deno.test("monitorArguments: one family is filtered, both are not", () => {
  assert.deepEqual(monitorArguments(["ipv4"]), ["--event", "-4"]);
  assert.deepEqual(monitorArguments(["ipv6"]), ["--event", "-6"]);
  assert.deepEqual(monitorArguments(["ipv4", "ipv6"]), ["--event"]);
  assert.deepEqual(monitorArguments(["ipv4"], { everyFamily: true }), ["--event"]);
});

// ---------------------------------------------------------------------------------------
// Debouncing

Deno.test("ChangeDebouncer: a lone change fires once, after the quiet time", async () => {
  const clock = new FakeClock();
  const debouncer = new ChangeDebouncer(FAST, clock);
  const trigger = track(debouncer.next(never()));
  debouncer.notify("changed");
  await clock.advance(299);
  assert.equal(trigger.value, undefined);
  await clock.advance(1);
  assert.equal(trigger.value, "changed");
  const again = track(debouncer.next(never()));
  await clock.advance(60_000);
  assert.equal(again.value, undefined, "nothing more without a new change");
  debouncer.close();
  await settle();
  assert.equal(again.value, "stop");
});

Deno.test("ChangeDebouncer: a burst of thousands of changes fires once or twice", async () => {
  const clock = new FakeClock();
  const debouncer = new ChangeDebouncer(FAST, clock);
  let fires = 0;
  const loop = (async () => {
    const stop = new AbortController();
    clock.setTimeout(() => stop.abort(), 20_000);
    while ((await debouncer.next(stop.signal)) !== "stop") fires++;
  })();
  // 4,000 events over 2 s, 20 every 10 ms: like kube-proxy restoring a big ruleset.
  for (let i = 0; i < 4_000; i++) {
    debouncer.notify("changed");
    if (i % 20 === 19) await clock.advance(10);
  }
  await clock.advance(20_000);
  await loop;
  assert.ok(fires >= 1 && fires <= 3, `fired ${fires} times`);
});

Deno.test("ChangeDebouncer: a burst is checked within the max wait, not after it", async () => {
  const clock = new FakeClock();
  const debouncer = new ChangeDebouncer(FAST, clock);
  const trigger = track(debouncer.next(never()));
  for (let t = 0; t < 900; t += 100) {
    debouncer.notify("changed");
    await clock.advance(100);
  }
  assert.equal(trigger.value, undefined);
  await clock.advance(100);
  assert.equal(trigger.value, "changed", "fired at 1 s although changes keep coming");
});

Deno.test("ChangeDebouncer: a trigger while nobody waits is kept for the next wait", async () => {
  const clock = new FakeClock();
  const debouncer = new ChangeDebouncer(FAST, clock);
  debouncer.notify("during the check");
  await clock.advance(1_000);
  assert.equal(debouncer.pending, true);
  const trigger = track(debouncer.next(never()));
  await settle();
  assert.equal(trigger.value, "during the check");
  assert.equal(debouncer.pending, false);
});

Deno.test("ChangeDebouncer: an ended wait does not swallow the next trigger", async () => {
  const clock = new FakeClock();
  const debouncer = new ChangeDebouncer(FAST, clock);
  const stale = new AbortController();
  const first = track(debouncer.next(stale.signal));
  stale.abort(); // the interval timer won this wait; a check runs now
  await settle();
  assert.equal(first.value, "stop");
  debouncer.notify("changed during the check");
  await clock.advance(1_000);
  const second = track(debouncer.next(never()));
  await settle();
  assert.equal(second.value, "changed during the check");
});

Deno.test("ChangeDebouncer: sustained churn spaces checks out; a quiet spell resets", async () => {
  const clock = new FakeClock();
  const options = DEFAULT_DEBOUNCE;
  const debouncer = new ChangeDebouncer(options, clock);
  const fireTimes: number[] = [];
  const stop = new AbortController();
  const loop = (async () => {
    while ((await debouncer.next(stop.signal)) !== "stop") fireTimes.push(clock.now());
  })();
  // A rewrite every second for 60 s: far fewer checks than rewrites...
  const rewrites: number[] = [];
  for (let second = 0; second < 60; second++) {
    rewrites.push(clock.now());
    debouncer.notify("rewrite");
    await clock.advance(1_000);
  }
  await clock.advance(10_000);
  const busy = fireTimes.length;
  assert.ok(busy >= 15 && busy <= 25, `${busy} checks for 60 rewrites`);
  // ...yet every rewrite is followed by a check within the longest gap and the quiet time.
  for (const at of rewrites) {
    const next = fireTimes.find((t) => t > at);
    assert.ok(next !== undefined && next - at <= options.maxGapMs + options.quietMs, `${at}`);
  }
  // Quiet for a while, then one change: checked after the quiet time again.
  await clock.advance(30_000);
  const before = clock.now();
  debouncer.notify("user rule");
  await clock.advance(options.quietMs);
  assert.equal(fireTimes.length, busy + 1);
  assert.equal(fireTimes[fireTimes.length - 1], before + options.quietMs);
  stop.abort();
  await loop;
});

Deno.test("unexpectedRulesMessage: the hint ends the Event message, within 1 KiB", () => {
  const hint = "hint: last ruleset change seen from PID 19934 (iptables)";
  const one = unexpectedRulesMessage(
    [{ family: "ipv4", table: "filter", chain: "INPUT", rule: "-A INPUT -j DROP" }],
    hint,
  );
  assert.ok(one.endsWith(`(${hint})`), one);
  assert.match(one, /\[ipv4 filter\] -A INPUT -j DROP/);
  const many = Array.from({ length: 50 }, (_, i) => ({
    family: "ipv4" as const,
    table: "filter",
    chain: "INPUT",
    rule: `-A INPUT -s 10.0.0.${i}/32 -m comment --comment "${"x".repeat(200)}" -j DROP`,
  }));
  const long = unexpectedRulesMessage(many, hint);
  assert.ok(new TextEncoder().encode(long).length <= EVENT_MESSAGE_LIMIT, `${long.length}`);
  assert.ok(long.endsWith(`(${hint})`), long);
  assert.equal(unexpectedRulesMessage(many).includes("hint"), false);
});

// ---------------------------------------------------------------------------------------
// Supervision

const BACKOFF = { firstMs: 1_000, maxMs: 8_000 };

function watcherWith(
  spawner: ReturnType<typeof fakeSpawner>,
  clock: FakeClock,
  log = recordingLogger(),
  nftView = false,
) {
  const watcher = RulesetWatcher.start({
    families: ["ipv4"],
    nftView,
    log,
    intervalSeconds: 300,
    spawn: spawner.spawn,
    timers: clock,
    debounce: FAST,
    backoff: BACKOFF,
  });
  return { watcher, log };
}

Deno.test("RulesetWatcher: runs stdbuf -oL xtables-monitor, triggers on its events", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner(() => "spawn");
  const { watcher, log } = watcherWith(spawner, clock);
  const [process] = spawner.processes;
  assert.equal(process.command, "stdbuf");
  assert.deepEqual(process.args, ["-oL", "xtables-monitor", "--event", "-4"]);
  const trigger = track(watcher.nextTrigger(never()));
  process.emit(" EVENT: -4 -t filter -A INPUT -s 1.2.3.4/32 -j DROP");
  process.emit("NEWGEN: GENID=5 PID=19934 NAME=iptables");
  await clock.advance(FAST.quietMs);
  assert.equal(trigger.value, "nf_tables ruleset changed");
  assert.equal(watcher.takeChangeHint(), "last ruleset change seen from PID 19934 (iptables)");
  assert.equal(watcher.takeChangeHint(), undefined);
  await watcher.close();
  assert.deepEqual(process.killedWith, ["SIGTERM"]);
  assert.equal(process.ended, true);
  assert.equal(watcher.starts, 1);
  assert.deepEqual(log.records.filter((r) => r.severity !== "I"), [], "no warnings");
});

Deno.test("RulesetWatcher: stdbuf not allowed -> the plain monitor, one warning", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner((command) =>
    command === "stdbuf" ? new Deno.errors.NotCapable("Requires --allow-run") : "spawn"
  );
  const { watcher, log } = watcherWith(spawner, clock);
  assert.deepEqual(spawner.attempts, ["stdbuf", "xtables-monitor"]);
  assert.deepEqual(spawner.processes[0].args, ["--event", "-4"]);
  // A restart does not try stdbuf again.
  spawner.processes[0].exit(
    1,
    null,
    "cannot receive from nfnetlink socket: No buffer space available",
  );
  await clock.advance(1_000);
  assert.deepEqual(spawner.attempts, ["stdbuf", "xtables-monitor", "xtables-monitor"]);
  const warnings = log.records.filter((r) => r.severity === "W");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /stdbuf.*--allow-run.*4 KiB/);
  await watcher.close();
});

Deno.test("RulesetWatcher: stdbuf that cannot preload (exit 125) -> plain monitor", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner(() => "spawn");
  const { watcher, log } = watcherWith(spawner, clock);
  spawner.processes[0].exit(125, null, "stdbuf: failed to find 'libstdbuf.so'");
  await clock.advance(0);
  assert.equal(spawner.processes.length, 2);
  assert.equal(spawner.processes[1].command, "xtables-monitor");
  assert.match(log.records.find((r) => r.severity === "W")!.message, /libstdbuf\.so/);
  await watcher.close();
});

Deno.test("RulesetWatcher: cannot start -> logged once, retried with doubling backoff", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner(() => new Deno.errors.NotFound("no such file"));
  const { watcher, log } = watcherWith(spawner, clock);
  const attemptTimes = () => spawner.attempts.filter((c) => c === "xtables-monitor").length;
  assert.equal(attemptTimes(), 1);
  const expected = [1_000, 2_000, 4_000, 8_000, 8_000];
  for (const [index, delay] of expected.entries()) {
    await clock.advance(delay - 1);
    assert.equal(attemptTimes(), index + 1, `not yet retried before ${delay} ms`);
    await clock.advance(1);
    assert.equal(attemptTimes(), index + 2, `retried after ${delay} ms`);
  }
  const warnings = log.records.filter((r) => r.severity === "W");
  // One for stdbuf (not installed either), one for the monitor, not one per attempt.
  assert.equal(warnings.length, 2, warnings.map((w) => w.message).join("\n"));
  assert.match(
    warnings[1].message,
    /cannot start xtables-monitor: not installed.*every 300 s only/,
  );
  await watcher.close();
  assert.equal(clock.pending().length, 0, "no timer left behind");
});

Deno.test("RulesetWatcher: a monitor that dies at once is restarted with backoff", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner(() => "spawn");
  const { watcher, log } = watcherWith(spawner, clock);
  spawner.processes[0].exit(1, null, "cannot open nfnetlink socket: Operation not permitted");
  await clock.advance(999);
  assert.equal(spawner.processes.length, 1);
  await clock.advance(1);
  assert.equal(spawner.processes.length, 2);
  spawner.processes[1].exit(1, null, "cannot open nfnetlink socket: Operation not permitted");
  await clock.advance(1_999);
  assert.equal(spawner.processes.length, 2);
  await clock.advance(1);
  assert.equal(spawner.processes.length, 3);
  const warnings = log.records.filter((r) => r.severity === "W");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /Operation not permitted/);
  // It stays up: logged as back, and a check covers what it may have missed meanwhile.
  const trigger = track(watcher.nextTrigger(never()));
  await clock.advance(1_000 + FAST.quietMs);
  assert.ok(log.records.some((r) => /runs again/.test(r.message)));
  assert.match(trigger.value ?? "", /back/);
  await watcher.close();
});

Deno.test("RulesetWatcher: an overrun or a killed monitor -> a re-check and a quick restart", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner(() => "spawn");
  const { watcher } = watcherWith(spawner, clock);
  await clock.advance(5_000);
  const trigger = track(watcher.nextTrigger(never()));
  spawner.processes[0].exit(
    1,
    null,
    "cannot receive from nfnetlink socket: No buffer space available",
  );
  await clock.advance(100);
  assert.equal(spawner.processes.length, 2, "restarted before the re-check");
  assert.equal(trigger.value, undefined);
  await clock.advance(FAST.quietMs);
  assert.match(trigger.value ?? "", /missed changes/);

  await clock.advance(20_000);
  const second = track(watcher.nextTrigger(never()));
  spawner.processes[1].exit(-1, "SIGKILL");
  await clock.advance(100 + FAST.quietMs);
  assert.equal(spawner.processes.length, 3);
  assert.match(second.value ?? "", /missed changes/);
  await watcher.close();
  assert.ok(spawner.processes.every((p) => p.ended), "every process ended and was awaited");
});

Deno.test("RulesetWatcher: close during a backoff sleep ends at once", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner(() => new Deno.errors.NotFound("no such file"));
  const { watcher } = watcherWith(spawner, clock);
  const trigger = track(watcher.nextTrigger(never()));
  await watcher.close();
  await settle();
  assert.equal(trigger.value, "stop");
  assert.equal(watcher.pid, undefined);
});

Deno.test("RulesetWatcher: a rule xtables-monitor cannot print -> a re-check and a quick restart", async () => {
  const clock = new FakeClock();
  const spawner = fakeSpawner(() => "spawn");
  const { watcher, log } = watcherWith(spawner, clock, recordingLogger(), true);
  // Failures before it ever ran well have doubled the backoff; this one must not wait.
  spawner.processes[0].exit(1, null, "cannot open nfnetlink socket: Operation not permitted");
  await clock.advance(1_000);
  spawner.processes[1].exit(1, null, "cannot open nfnetlink socket: Operation not permitted");
  await clock.advance(2_000);
  assert.equal(spawner.processes.length, 3);
  await clock.advance(3_000);
  const trigger = track(watcher.nextTrigger(never()));
  // What xtables-monitor 1.8.9 prints when a kube-proxy nftables-mode rule arrives: the
  // start of the rule's event, then it ends before the transaction's NEWGEN line.
  spawner.processes[2].emit(" EVENT: -4 -t kube-proxy ");
  spawner.processes[2].exit(
    3,
    null,
    "Error: cmp sreg undef\nxtables-monitor v1.8.9 (nf_tables): Parsing nftables rule failed\n" +
      "Perhaps xtables-monitor or your kernel needs to be upgraded.\n",
  );
  await clock.advance(100);
  assert.equal(spawner.processes.length, 4, "restarted at once, not after the backoff");
  await clock.advance(FAST.quietMs);
  assert.match(trigger.value ?? "", /missed changes/);
  assert.equal(log.records.filter((r) => r.severity === "W").length, 1, "only the first warned");
  // Back up (and checked for what it missed); then a set element changes: xtables-monitor
  // prints only the transaction's NEWGEN line. The dead monitor's open transaction must
  // not swallow it.
  await clock.advance(2_000);
  track(watcher.nextTrigger(never()));
  await clock.advance(FAST.minGapMs + FAST.quietMs);
  const element = track(watcher.nextTrigger(never()));
  spawner.processes[3].emit("NEWGEN: GENID=20 PID=30219 NAME=nft");
  await clock.advance(FAST.maxGapMs + FAST.quietMs);
  assert.match(element.value ?? "", /ruleset changed/);
  // Rules churned so that each new monitor dies at once: restarted with backoff.
  spawner.processes[3].emit(" EVENT: -4 -t kube-proxy ");
  spawner.processes[3].exit(3, null, "Parsing nftables rule failed");
  await clock.advance(100);
  assert.equal(spawner.processes.length, 5);
  spawner.processes[4].emit(" EVENT: -4 -t kube-proxy ");
  spawner.processes[4].exit(3, null, "Parsing nftables rule failed");
  await clock.advance(999);
  assert.equal(spawner.processes.length, 5, "not restarted at once");
  await clock.advance(1);
  assert.equal(spawner.processes.length, 6);
  await watcher.close();
  assert.ok(spawner.processes.every((p) => p.ended), "every process ended and was awaited");
});
