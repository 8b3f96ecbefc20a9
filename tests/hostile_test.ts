/**
 * The monitor against what a hostile neighbour can put in its way: allowlist files that
 * are FIFOs, devices or endless, save commands that hang, flood, cannot run or die by a
 * signal, signals at start and in the middle of a check, bad kubeconfigs and an API
 * that refuses every write. Each run is the real program (as `deno task monitor` runs
 * it) under a memory limit (`prlimit --data`, so a failure cannot harm the machine),
 * and each case asserts its time bound, its exit code, its one error line, its peak
 * memory where output is the threat, and that no process it started is left.
 */

import assert from "node:assert/strict";
import { monitorArgs, ROOT } from "./_support/cli.ts";
import { ApiFixture } from "./_support/api_fixture.ts";
import { requires } from "./_support/requires.ts";

/**
 * The data segment limit of every run (`prlimit --data`): a safety net, so that a run
 * whose memory is not bounded dies instead of harming the machine. V8 reserves about
 * 600 MiB of writable address space before it uses much of it, so the bound the tests
 * assert is the peak RSS below.
 */
const DATA_LIMIT_BYTES = 2 * 1024 * 1024 * 1024;
/** Peak RSS a run whose output is the threat may reach: well inside a DaemonSet's 768 MiB. */
const MAX_RSS_KIB = 400 * 1024;

const needs = requires({ commands: ["prlimit", "time", "sh", "mkfifo", "kill"] });

/** What one run did. */
interface Run {
  code: number;
  signal: Deno.Signal | null;
  /** From the start (or from the signal, when one was sent) to the exit. */
  elapsedMs: number;
  stdout: string;
  stderr: string;
  /** Peak resident memory in KiB, when measured. */
  maxRssKib?: number;
}

interface RunOptions {
  args: string[];
  /** Directory put first on PATH (fake save commands). */
  bin?: string;
  env?: Record<string, string>;
  /**
   * Send this signal `atMs` after the start, or once `when` holds for what it logged so
   * far; the peak RSS until then is measured from /proc.
   */
  signal?: {
    name: Deno.Signal;
    atMs?: number;
    when?: (stderr: string, pid: number) => boolean;
  };
  /** Measure the peak RSS with /usr/bin/time (not with a signal: time would get it). */
  measure?: boolean;
  /** The run is killed (and the test fails) after this long. */
  timeoutMs: number;
}

const RSS_MARK = "AIM-MAX-RSS-KIB";

async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }) {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    if (sink.text.length < 1_000_000) sink.text += chunk;
  }
}

/** Runs the monitor under the memory limit and the options' time bound. */
async function runUnderLimits(options: RunOptions): Promise<Run> {
  const deno = [Deno.execPath(), ...monitorArgs(), ...options.args];
  const timed = options.measure ? ["time", "-f", `${RSS_MARK} %M`, ...deno] : deno;
  const path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  const child = new Deno.Command("prlimit", {
    args: [`--data=${DATA_LIMIT_BYTES}`, "--", ...timed],
    env: {
      NO_COLOR: "1",
      PATH: options.bin === undefined ? path : `${options.bin}:${path}`,
      ...options.env,
    },
    clearEnv: true,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { text: "" };
  const err = { text: "" };
  const drained = Promise.all([collect(child.stdout, out), collect(child.stderr, err)]);
  let started = performance.now();
  let peakBeforeSignal: number | undefined;
  const hard = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
  try {
    if (options.signal !== undefined) {
      const { name, atMs, when } = options.signal;
      if (atMs !== undefined) await delay(atMs);
      while (when !== undefined && !when(err.text, child.pid)) {
        if (performance.now() - started > options.timeoutMs) break;
        await delay(20);
      }
      peakBeforeSignal = peakRssKib(child.pid);
      started = performance.now();
      try {
        child.kill(name);
      } catch {
        // It ended before the signal; the assertions on its status say so.
      }
    }
    const status = await child.status;
    const elapsedMs = performance.now() - started;
    await drained;
    const rss = err.text.match(new RegExp(`${RSS_MARK} (\\d+)`));
    const stderr = err.text.replace(new RegExp(`^${RSS_MARK} \\d+\\n?`, "m"), "");
    return {
      code: status.code,
      signal: status.signal,
      elapsedMs,
      stdout: out.text,
      stderr,
      maxRssKib: rss === null ? peakBeforeSignal : Number(rss[1]),
    };
  } finally {
    clearTimeout(hard);
  }
}

/**
 * Whether process `pid` has a handler for SIGTERM (SigCgt): the program's own handler,
 * installed by its first instruction. Before that, SIGTERM's default action applies.
 */
function catchesSigterm(pid: number): boolean {
  try {
    const match = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^SigCgt:\s+([0-9a-f]+)/m);
    return match !== null && (BigInt(`0x${match[1]}`) & (1n << 14n)) !== 0n;
  } catch {
    return false;
  }
}

/** The peak resident memory of a running process (VmHWM), in KiB. */
function peakRssKib(pid: number): number | undefined {
  try {
    const match = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmHWM:\s+(\d+) kB/m);
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The klog lines of severity E (errors), their text after the header. */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("E"))
    .map((line) => line.replace(/^E\S+ \S+\s+\d+ \S+\] /, ""));
}

/** PIDs of live processes whose command line mentions `token` (a test's own directory). */
function processesMentioning(token: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "Z" && cmdline.includes(token)) found.push(Number(entry.name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Asserts that nothing mentioning `token` runs (after a moment for the kernel); cleans up. */
async function assertNothingLeft(token: string): Promise<void> {
  let left = processesMentioning(token);
  for (let i = 0; i < 25 && left.length > 0; i++) {
    await delay(40);
    left = processesMentioning(token);
  }
  for (const pid of left) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  assert.deepEqual(left, [], `processes left running: ${left.join(", ")}`);
}

/** A private directory with `bin/` for fake commands; removed afterwards. */
async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aim-hostile-" });
  await Deno.mkdir(`${dir}/bin`);
  await Deno.mkdir(`${dir}/allow`);
  // The clean dump's policies are expected: a run fails only for what the test plants.
  await Deno.writeTextFile(`${dir}/allow/filter`, "^-P (INPUT|FORWARD|OUTPUT) ACCEPT$\n");
  // A sleep whose command line names this directory, so leftovers can be found.
  await Deno.symlink("/bin/sleep", `${dir}/bin/aim-sleep`);
  try {
    await body(dir);
  } finally {
    await assertNothingLeft(dir).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

async function script(path: string, body: string): Promise<void> {
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
}

const CLEAN_DUMP = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
  "COMMIT\n";

/** Fake IPv4 saves in `dir/bin`: the nf_tables one as given, the legacy one clean. */
async function fakeSaves(dir: string, nft: string): Promise<void> {
  await script(`${dir}/bin/iptables-nft-save`, nft);
  await script(`${dir}/bin/iptables-legacy-save`, `printf '${CLEAN_DUMP.replaceAll("\n", "\\n")}'`);
}

/** A hung save that also started a grandchild in its group. */
const HUNG_SAVE = '"$(dirname "$0")/aim-sleep" 1000 &\nexec "$(dirname "$0")/aim-sleep" 999';

function once(dir: string, extra: string[] = []): string[] {
  return ["-once", "-dryRun", `-input=${dir}/allow`, ...extra];
}

// ---- files ----

Deno.test({
  name: "hostile files: a FIFO, /dev/zero and a growing file are refused, nothing waits",
  ...needs,
  async fn(t) {
    const cases: { name: string; plant: (path: string) => Promise<void>; message: RegExp }[] = [
      {
        name: "a FIFO named global",
        plant: async (path) => {
          const made = await new Deno.Command("mkfifo", { args: [path] }).output();
          assert.ok(made.success);
        },
        message: /global is a named pipe \(FIFO\), not a regular file, so it was not read$/,
      },
      {
        name: "a symbolic link to /dev/zero",
        plant: (path) => Deno.symlink("/dev/zero", path),
        message: /global is a character device, not a regular file, so it was not read$/,
      },
      {
        name: "a file that grows while it is read",
        plant: async (path) => {
          await Deno.writeTextFile(path, "");
          // 256 MiB at most, so the disk is safe whatever happens.
          new Deno.Command("sh", {
            args: ["-c", `yes -- '-A INPUT -j ACCEPT' | head -c 268435456 >> '${path}'`],
            stdout: "null",
            stderr: "null",
          }).spawn();
          while ((await Deno.stat(path)).size === 0) await delay(5);
        },
        message: /global is larger than 1 MiB; allowlist files are limited to 1 MiB/,
      },
    ];
    for (const testCase of cases) {
      await t.step(testCase.name, () =>
        withDir(async (dir) => {
          await Deno.writeTextFile(`${dir}/dump`, CLEAN_DUMP);
          await testCase.plant(`${dir}/allow/global`);
          const run = await runUnderLimits({
            args: once(dir, [`-rulesFile=${dir}/dump`]),
            measure: true,
            timeoutMs: 30_000,
          });
          assert.equal(run.code, 2, run.stderr);
          assert.ok(run.elapsedMs < 10_000, `took ${run.elapsedMs} ms`);
          const errors = errorLines(run.stderr);
          assert.equal(errors.length, 1, run.stderr);
          assert.match(errors[0], testCase.message);
          assert.ok(errors[0].includes(`${dir}/allow/global`), errors[0]);
          assert.ok(run.maxRssKib! < MAX_RSS_KIB, `peak RSS ${run.maxRssKib} KiB`);
        }));
    }
  },
});

Deno.test({
  name: "hostile files: a -rulesFile that is a FIFO or a device is refused at once",
  ...needs,
  fn: () =>
    withDir(async (dir) => {
      const made = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
      assert.ok(made.success);
      for (
        const [path, kind] of [[`${dir}/fifo`, "a named pipe \\(FIFO\\)"], [
          "/dev/zero",
          "a character device",
        ]]
      ) {
        const run = await runUnderLimits({
          args: once(dir, [`-rulesFile=${path}`]),
          timeoutMs: 30_000,
        });
        assert.equal(run.code, 2, run.stderr);
        assert.ok(run.elapsedMs < 10_000, `took ${run.elapsedMs} ms`);
        const errors = errorLines(run.stderr);
        assert.equal(errors.length, 1, run.stderr);
        assert.match(errors[0], new RegExp(`rules file ${path} is ${kind}, not a regular file`));
      }
    }),
});

// ---- save commands ----

Deno.test({
  name: "hostile saves: flooding, 630 MB, no interpreter, a signal: one error each, bounded",
  ...needs,
  async fn(t) {
    // A ruleset too large to read is a finding (exit 1: a node user can cause it by adding
    // rules); a save that cannot run or dies of another signal makes the check unknown (2).
    const cases: { name: string; save: string; message: RegExp; maxMs: number; code: 1 | 2 }[] = [
      {
        name: "endless output",
        save: "exec yes -- '-A INPUT -j ACCEPT'",
        message: /^iptables-nft-save printed more than 32 MiB and was killed/,
        maxMs: 20_000,
        code: 1,
      },
      {
        name: "630 MB, then a normal exit",
        save: "yes -- '-A INPUT -j ACCEPT' | head -c 630000000",
        message: /^iptables-nft-save printed more than 32 MiB and was killed/,
        maxMs: 20_000,
        code: 1,
      },
      {
        name: "on PATH but its interpreter is missing (execve: ENOENT)",
        save: "",
        message:
          /^iptables-nft-save is on PATH but could not be run: .*iptables-nft-save exists but execve failed with ENOENT/,
        maxMs: 10_000,
        code: 2,
      },
      {
        name: "killed by a signal",
        save: "echo '*filter'; kill -SEGV $$",
        message: /^iptables-nft-save was killed by SIGSEGV/,
        maxMs: 10_000,
        code: 2,
      },
    ];
    for (const testCase of cases) {
      await t.step(testCase.name, () =>
        withDir(async (dir) => {
          await fakeSaves(dir, testCase.save);
          if (testCase.save === "") {
            await Deno.writeTextFile(`${dir}/bin/iptables-nft-save`, "#!/nonexistent/sh\n");
          }
          const run = await runUnderLimits({
            args: once(dir, ["-output=json"]),
            bin: `${dir}/bin`,
            measure: true,
            timeoutMs: 60_000,
          });
          assert.equal(run.code, testCase.code, run.stderr);
          assert.ok(run.elapsedMs < testCase.maxMs, `took ${run.elapsedMs} ms`);
          const errors = errorLines(run.stderr);
          assert.equal(errors.length, 1, run.stderr);
          assert.match(errors[0], testCase.message);
          const report = JSON.parse(run.stdout);
          assert.equal(report.errors.length, 1);
          assert.equal(report.errors[0].kind, "iptables");
          assert.equal(report.unexpected, testCase.code === 1);
          assert.ok(run.maxRssKib! < MAX_RSS_KIB, `peak RSS ${run.maxRssKib} KiB`);
        }));
    }
  },
});

Deno.test({
  name: "hostile saves: one that hangs is killed at the save timeout with what it started",
  ...needs,
  fn: () =>
    withDir(async (dir) => {
      await fakeSaves(dir, HUNG_SAVE);
      const run = await runUnderLimits({
        args: once(dir),
        bin: `${dir}/bin`,
        timeoutMs: 90_000,
      });
      // A node user can make a real save outlast its deadline by adding rules: a finding.
      assert.equal(run.code, 1, run.stderr);
      assert.ok(run.elapsedMs < 70_000, `took ${run.elapsedMs} ms`);
      const errors = errorLines(run.stderr);
      assert.deepEqual(errors, ["iptables-nft-save did not finish within 60s and was killed"]);
      await assertNothingLeft(dir);
    }),
});

Deno.test({
  name: "hostile saves: the daemon lives through floods, check after check, in bounded memory",
  ...needs,
  fn: () =>
    withDir(async (dir) => {
      await fakeSaves(dir, "exec yes -- '-A INPUT -j ACCEPT'");
      const flood = /printed more than 32 MiB and was killed/g;
      const run = await runUnderLimits({
        args: ["-dryRun", `-input=${dir}/allow`, "-interval=1"],
        bin: `${dir}/bin`,
        signal: { name: "SIGTERM", when: (stderr) => (stderr.match(flood) ?? []).length >= 3 },
        timeoutMs: 30_000,
      });
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.elapsedMs < 5_000, `took ${run.elapsedMs} ms after the signal`);
      assert.ok((run.stderr.match(flood) ?? []).length >= 3, run.stderr);
      assert.doesNotMatch(run.stderr, /internal error/);
      assert.ok(run.maxRssKib! < MAX_RSS_KIB, `peak RSS ${run.maxRssKib} KiB`);
      await assertNothingLeft(dir);
    }),
});

// ---- signals ----

Deno.test({
  name: "signals mid-check: -once exits 143 (130 for SIGINT), the daemon 0, within 5 s",
  ...needs,
  async fn(t) {
    const cases: { name: string; args: string[]; signal: Deno.Signal; code: number }[] = [
      { name: "-once, SIGTERM", args: ["-once"], signal: "SIGTERM", code: 143 },
      { name: "-once, SIGINT", args: ["-once"], signal: "SIGINT", code: 130 },
      { name: "daemon, SIGTERM", args: ["-interval=1"], signal: "SIGTERM", code: 0 },
      { name: "daemon, SIGINT", args: ["-interval=1"], signal: "SIGINT", code: 0 },
    ];
    for (const testCase of cases) {
      await t.step(testCase.name, () =>
        withDir(async (dir) => {
          await fakeSaves(dir, HUNG_SAVE);
          const run = await runUnderLimits({
            args: ["-dryRun", `-input=${dir}/allow`, ...testCase.args],
            bin: `${dir}/bin`,
            // Once the hung save (and its grandchild) run: the middle of a check.
            signal: {
              name: testCase.signal,
              when: () => processesMentioning(dir).length >= 2,
            },
            timeoutMs: 30_000,
          });
          assert.equal(run.code, testCase.code, run.stderr);
          assert.equal(run.signal, null);
          assert.ok(run.elapsedMs < 5_000, `took ${run.elapsedMs} ms after the signal`);
          if (testCase.args.includes("-once")) {
            assert.deepEqual(errorLines(run.stderr), [
              `stopped by ${testCase.signal} before the check was done; nothing was reported`,
            ]);
            assert.equal(run.stdout, "", "no report for a check that did not finish");
          } else {
            assert.match(run.stderr, /stopping: signal received/);
          }
          await assertNothingLeft(dir);
        }));
    }
  },
});

Deno.test({
  name: "signals at start: the daemon ends with 0 once its handlers run, nothing left",
  ...requires({ commands: ["prlimit", "time", "sh", "kill", "openssl"] }),
  async fn(t) {
    await using api = await ApiFixture.start();
    api.seedCiliumNode("aim-hostile");
    api.seedNode("aim-hostile");
    const cases: { name: string; atMs: number; handled: boolean }[] = [
      // Perhaps before the runtime ran the first instruction: then the default action.
      { name: "100 ms after the start", atMs: 100, handled: false },
      // Once the handlers are in place (the Kubernetes client loads next), and later.
      { name: "as soon as its handlers are installed", atMs: 0, handled: true },
      { name: "1 s after its handlers are installed", atMs: 1_000, handled: true },
    ];
    for (const { name, atMs, handled } of cases) {
      await t.step(`SIGTERM ${name}`, () =>
        withDir(async (dir) => {
          await fakeSaves(dir, HUNG_SAVE);
          let installedAt: number | undefined;
          const run = await runUnderLimits({
            args: [`-input=${dir}/allow`, `-kubeconfig=${api.kubeconfigPath}`, "-interval=1"],
            bin: `${dir}/bin`,
            env: { NODE_NAME: "aim-hostile" },
            signal: handled
              ? {
                name: "SIGTERM",
                when: (_, pid) => {
                  if (installedAt === undefined && catchesSigterm(pid)) {
                    installedAt = performance.now();
                  }
                  return installedAt !== undefined && performance.now() - installedAt >= atMs;
                },
              }
              : { name: "SIGTERM", atMs },
            timeoutMs: 60_000,
          });
          // While the Kubernetes client loads (once, at start, before anything else is
          // started) no JavaScript runs, so the signal is acted on when loading ends:
          // about 1 s on the benchmark machine, up to 17 s on this shared one under a
          // load of 12. The bound is wider here than the 5 s that holds from every later
          // state (the README says so).
          assert.ok(run.elapsedMs < 30_000, `took ${run.elapsedMs} ms after the signal`);
          if (handled) {
            assert.equal(run.signal, null, "ended by its handler, not by the signal");
            assert.equal(run.code, 0, run.stderr);
            assert.equal(errorLines(run.stderr).length, 0, run.stderr);
          } else {
            assert.ok(run.code === 0 || run.signal === "SIGTERM", `${run.code} ${run.signal}`);
          }
          await assertNothingLeft(dir);
        }));
    }
  },
});

Deno.test({
  name: "signals at start: -once exits 143 with one line, nothing left",
  ...requires({ commands: ["prlimit", "time", "sh", "kill", "openssl"] }),
  async fn() {
    await using api = await ApiFixture.start();
    api.seedCiliumNode("aim-hostile");
    api.seedNode("aim-hostile");
    await withDir(async (dir) => {
      await fakeSaves(dir, HUNG_SAVE);
      const run = await runUnderLimits({
        args: ["-once", `-input=${dir}/allow`, `-kubeconfig=${api.kubeconfigPath}`],
        bin: `${dir}/bin`,
        env: { NODE_NAME: "aim-hostile" },
        signal: { name: "SIGTERM", when: (_, pid) => catchesSigterm(pid) },
        timeoutMs: 60_000,
      });
      // As for the daemon, a signal while the Kubernetes client loads waits for the load.
      assert.ok(run.elapsedMs < 30_000, `took ${run.elapsedMs} ms after the signal`);
      assert.equal(run.signal, null, `ended by the signal itself, ${run.elapsedMs} ms`);
      assert.equal(run.code, 143, run.stderr);
      assert.deepEqual(errorLines(run.stderr), [
        "stopped by SIGTERM before the check was done; nothing was reported",
      ]);
      assert.equal(run.stdout, "");
      assert.equal(api.requests({ method: "PATCH" }).length, 0, "nothing was written");
      await assertNothingLeft(dir);
    });
  },
});

// ---- configuration ----

Deno.test({
  name: "bad configuration: each kubeconfig problem and NODE_NAME is one line, exit 2",
  ...needs,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/dump`, CLEAN_DUMP);
      const kubeconfigs: [string, string, RegExp][] = [
        ["not-yaml", "clusters: [\n  - name: x\n   bad: : :\n", /is not YAML: /],
        [
          "not-a-kubeconfig",
          "- just\n- a list\n",
          /has no current context with a cluster|is not a kubeconfig/,
        ],
        ["scalar", "42\n", /has no current context with a cluster|is not a kubeconfig/],
        [
          "exec-plugin",
          [
            "apiVersion: v1",
            "kind: Config",
            "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]",
            "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: kubelogin}}}]",
            "contexts: [{name: x, context: {cluster: c, user: u}}]",
            "current-context: x",
          ].join("\n"),
          /uses an exec credential plugin \(kubelogin\), which this monitor does not run/,
        ],
      ];
      for (const [name, text, message] of kubeconfigs) {
        const path = `${dir}/${name}`;
        await Deno.writeTextFile(path, text);
        const run = await runUnderLimits({
          args: ["-once", `-input=${dir}/allow`, `-rulesFile=${dir}/dump`, `-kubeconfig=${path}`],
          env: { NODE_NAME: "aim-hostile" },
          timeoutMs: 60_000,
        });
        assert.equal(run.code, 2, `${name}: ${run.stderr}`);
        const lines = run.stderr.trimEnd().split("\n");
        assert.equal(lines.length, 1, `${name}: one line, got:\n${run.stderr}`);
        assert.match(lines[0], message, name);
        assert.ok(lines[0].includes(path), lines[0]);
      }
      for (const node of ["..", "a\nb", "a".repeat(254)]) {
        const run = await runUnderLimits({
          args: ["-once", `-input=${dir}/allow`, `-rulesFile=${dir}/dump`],
          env: { NODE_NAME: node },
          timeoutMs: 30_000,
        });
        assert.equal(run.code, 2);
        assert.match(run.stderr.split("\n")[0], /^NODE_NAME=".*" is not a valid node name: /);
      }
    }),
});

Deno.test({
  name: "-once says when its result could not be reported, and exits 3",
  ...requires({ commands: ["prlimit", "time", "openssl"] }),
  fn: () =>
    withDir(async (dir) => {
      await using api = await ApiFixture.start();
      api.seedCiliumNode("aim-hostile");
      api.seedNode("aim-hostile");
      api.inject({ kind: "status", status: 403 });
      await Deno.writeTextFile(`${dir}/dump`, CLEAN_DUMP);
      const run = await runUnderLimits({
        args: [
          "-once",
          `-input=${dir}/allow`,
          `-rulesFile=${dir}/dump`,
          `-kubeconfig=${api.kubeconfigPath}`,
        ],
        env: { NODE_NAME: "aim-hostile" },
        timeoutMs: 60_000,
      });
      assert.equal(run.code, 3, run.stderr);
      const errors = errorLines(run.stderr);
      assert.match(
        errors[errors.length - 1],
        /^the result of this check was not reported: label not written: get ciliumnodes\.cilium\.io "aim-hostile": forbidden \(403\)/,
      );
      assert.match(run.stdout, /verdict/i, "the report is still printed");
    }),
});

Deno.test({
  name:
    "signals in every wait: a stalled API request, a hung bpftool, a hung ip route: exit 0 in 5 s",
  ...requires({ commands: ["prlimit", "time", "sh", "kill", "openssl"] }),
  async fn(t) {
    await using api = await ApiFixture.start();
    api.seedCiliumNode("aim-hostile");
    api.seedNode("aim-hostile");
    await t.step("a stalled API request", () =>
      withDir(async (dir) => {
        await fakeSaves(dir, `printf '${CLEAN_DUMP.replaceAll("\n", "\\n")}'`);
        api.clearRequests();
        api.inject({ kind: "stall" });
        try {
          const run = await runUnderLimits({
            args: [`-input=${dir}/allow`, `-kubeconfig=${api.kubeconfigPath}`, "-interval=1"],
            bin: `${dir}/bin`,
            env: { NODE_NAME: "aim-hostile" },
            signal: { name: "SIGTERM", when: () => api.requests().length > 0 },
            timeoutMs: 60_000,
          });
          assert.equal(run.code, 0, run.stderr);
          assert.ok(run.elapsedMs < 5_000, `took ${run.elapsedMs} ms after the signal`);
        } finally {
          api.clearFaults();
        }
        await assertNothingLeft(dir);
      }));
    const hung: [string, string, string[]][] = [
      ["bpftool", "a hung bpftool (-checkMap)", ["-checkMap", `-mapPath=/nonexistent/map`]],
      ["ip", "a hung ip route replace", ["-installRoutesForHealthProbeReply"]],
    ];
    for (const [command, name, args] of hung) {
      await t.step(name, () =>
        withDir(async (dir) => {
          await fakeSaves(dir, `printf '${CLEAN_DUMP.replaceAll("\n", "\\n")}'`);
          await script(`${dir}/bin/${command}`, HUNG_SAVE);
          const run = await runUnderLimits({
            args: ["-dryRun", `-input=${dir}/allow`, "-interval=1", ...args],
            bin: `${dir}/bin`,
            signal: {
              name: "SIGTERM",
              when: () => processesMentioning(`${dir}/bin/aim-sleep`).length >= 2,
            },
            timeoutMs: 60_000,
          });
          assert.equal(run.code, 0, run.stderr);
          assert.ok(run.elapsedMs < 5_000, `took ${run.elapsedMs} ms after the signal`);
          await assertNothingLeft(dir);
        }));
    }
  },
});

Deno.test({
  name: "-once -checkMap with a hash map at -mapPath: one line saying what it is, exit 2",
  ...requires({ root: true, commands: ["prlimit", "time", "bpftool", "mount", "umount"] }),
  fn: () =>
    withDir(async (dir) => {
      await Deno.mkdir(`${dir}/bpffs`);
      const run = (command: string, args: string[]) =>
        new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output();
      assert.ok((await run("mount", ["-t", "bpf", "bpf", `${dir}/bpffs`])).success);
      try {
        const map = `${dir}/bpffs/counter`;
        const made = await run("bpftool", [
          ...["map", "create", map, "type", "hash", "key", "4", "value", "8"],
          ...["entries", "4", "name", "aim_hostile"],
        ]);
        assert.ok(made.success);
        await Deno.writeTextFile(`${dir}/dump`, CLEAN_DUMP);
        const result = await runUnderLimits({
          args: once(dir, [`-rulesFile=${dir}/dump`, "-checkMap", `-mapPath=${map}`]),
          timeoutMs: 30_000,
        });
        assert.equal(result.code, 2, result.stderr);
        assert.deepEqual(errorLines(result.stderr), [
          `BPF map ${map} is a hash map with 4-byte keys and 8-byte values; expected an ` +
          "array map with 4-byte keys and 8-byte (u64) values",
        ]);
      } finally {
        await run("umount", [`${dir}/bpffs`]);
      }
    }),
});
