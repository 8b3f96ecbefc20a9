/**
 * What the agent costs a node: the memory of the one-shot and of the running daemon at
 * 1k, 5k and 20k nf_tables services beside a bare `deno` and `deno` with only the
 * Kubernetes client loaded (the floor), and the time from start to exit 0 of
 * `-terminateOnSuccess` on a clean node beside the save command alone and the client
 * import alone. Everything is measured in one run, each ruleset generated and loaded
 * once, the daemon and `-terminateOnSuccess` talking to the HTTPS API fixture through
 * a veth pair, exactly as `deno task monitor` runs (flags from deno.json).
 *
 * Part of `deno task bench`; alone:
 * `deno run -A bench/footprint.ts [--sizes 1000,5000,20000] [--daemonSeconds 60] [--runs 5]`
 * prints the two tables.
 *
 * @module
 */
import { monitorArgs, ROOT } from "../tests/_support/cli.ts";
import { widenRead } from "../tests/_support/daemon.ts";
import { ApiFixture } from "../tests/_support/api_fixture.ts";
import { type Netns, withNetns } from "../tests/_support/netns.ts";
import { linkNetns } from "../tests/_support/veth.ts";
import { inKubeProxyCreationOrder } from "./creation_order.ts";
import { median, mustRun, timeProcess } from "./measure.ts";
import type { MemorySnapshot } from "./memory.ts";
import { bareProbeArgv, BareProbeSchema, KubeProbeSchema, oneShotArgv, probeArgv } from "./ours.ts";
import { generateRuleset } from "./ruleset.ts";

/** The label the monitor writes on the CiliumNode. */
const LABEL = "kubernetes.azure.com/user-iptables-rules";
const INPUT = "patterns/ipv4";
const SEED = 20240611;
const NODE = "aim-bench-node";
const MiB = 1024 * 1024;

/** What to measure. */
export interface FootprintOptions {
  /** Services per generated nf_tables ruleset, e.g. `[1000, 5000, 20000]`. */
  sizes: number[];
  /** How long each daemon runs (`-interval=1`, so checks follow each other). */
  daemonSeconds: number;
  /** One-shot runs per size (peak RSS), and start-up runs of each kind. */
  runs: number;
  /** The ruleset size the start-up is measured on. */
  startupSize: number;
  progress?: (message: string) => void;
}

/** The daemon's resident set over time. */
export interface DaemonMemory {
  seconds: number;
  /** Checks it completed (its `check done` lines at `-v 2`). */
  checks: number;
  /** VmRSS sampled once a second, in bytes. */
  rss: number[];
  /** VmHWM at the end. */
  peakRss: number;
}

/** One ruleset size. */
export interface SizeFootprint {
  services: number;
  lines: number;
  dumpBytes: number;
  /** Peak RSS of each one-shot (`-once -dryRun`). */
  oneShotPeakRss: number[];
  oneShotMs: number[];
  daemon: DaemonMemory;
}

/** Start to exit 0 on a clean node, and its two possible floors. */
export interface Startup {
  services: number;
  /** `iptables-nft-save` alone, as a process. */
  saveMs: number[];
  /** A `deno` process that only imports `@kubernetes/client-node` (with our V8 flags). */
  importMs: number[];
  /** `-terminateOnSuccess` from spawn to exit 0. */
  oursMs: number[];
  /** CPU time (user + system) of each, where GNU time measured it: the save, the import, ours. */
  cpuMs: { save: number[]; import: number[]; ours: number[] };
  /** Every run of ours wrote the label "false" before exiting. */
  labelWritten: boolean;
}

/** Everything this module measures. */
export interface FootprintResult {
  startedAt: string;
  /** /proc/loadavg at the start: the CPU is shared, and times stretch with the load. */
  loadAverage: string;
  durationMs: number;
  bare: MemorySnapshot;
  kubeOnly: MemorySnapshot;
  sizes: SizeFootprint[];
  startup?: Startup;
  commands: Record<string, string>;
}

function parseJson<T>(schema: { parse(value: unknown): T }, text: string): T {
  return schema.parse(JSON.parse(text));
}

function vmField(pid: number, field: string): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The monitor as `deno task monitor` runs it, inside `ns`, allowed to read the kubeconfig. */
function monitorArgv(ns: Netns, fixture: ApiFixture, args: string[]): string[] {
  const argv = [
    ...widenRead(monitorArgs(), [fixture.kubeconfigPath]),
    `-kubeconfig=${fixture.kubeconfigPath}`,
    `-input=${INPUT}`,
    ...args,
  ];
  const wrapped = ns.wrap(Deno.execPath(), argv);
  return [wrapped.command, ...wrapped.args];
}

function shown(argv: string[]): string {
  return argv.join(" ");
}

async function runDaemonFor(
  ns: Netns,
  fixture: ApiFixture,
  seconds: number,
  commands: Record<string, string>,
): Promise<DaemonMemory> {
  const argv = monitorArgv(ns, fixture, ["-interval=1", "-v=2"]);
  commands["daemon"] ??= `NODE_NAME=${NODE} ${shown(argv)}`;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { NODE_NAME: NODE, NO_COLOR: "1" },
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
    }
  })();
  const rss: number[] = [];
  let peakRss = 0;
  let checks = 0;
  try {
    for (let second = 0; second < seconds; second++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = vmField(child.pid, "VmRSS");
      if (now === null) throw new Error(`the daemon ended early: ${stderr.slice(-2000)}`);
      rss.push(now);
    }
    peakRss = vmField(child.pid, "VmHWM") ?? 0;
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await drained;
    checks = stderr.split("\n").filter((line) => line.includes("check done:")).length;
  }
  return { seconds, checks, rss, peakRss };
}

async function measureSize(
  services: number,
  options: FootprintOptions,
  commands: Record<string, string>,
  log: (message: string) => void,
  startupToo: boolean,
): Promise<{ size: SizeFootprint; startup?: Startup }> {
  const ruleset = generateRuleset({ services, family: "ipv4", seed: SEED, userRules: false });
  log(`footprint ${services}: ${ruleset.lineCount} lines, ${ruleset.dump.length} bytes`);
  return await withNetns(async (ns) => {
    await ns.restore("ipv4", "nft", inKubeProxyCreationOrder(ruleset.dump, SEED));
    const link = await linkNetns(ns);
    const fixture = await ApiFixture.start({ hostname: link.hostAddress });
    try {
      fixture.seedCiliumNode(NODE);
      fixture.seedNode(NODE);
      const inNs = (argv: string[]) => {
        const wrapped = ns.wrap(argv[0], argv.slice(1));
        return [wrapped.command, ...wrapped.args];
      };

      const oneShotPeakRss: number[] = [];
      const oneShotMs: number[] = [];
      for (let i = 0; i < options.runs; i++) {
        const argv = inNs(oneShotArgv(INPUT));
        commands["one-shot"] ??= shown(argv);
        const run = await timeProcess(argv, { cwd: ROOT, timeoutMs: 600_000 });
        if (run.code !== 0) throw new Error(`one-shot exited ${run.code}: ${run.stderr}`);
        oneShotPeakRss.push(run.peakRss ?? 0);
        oneShotMs.push(run.wallMs);
      }
      log(
        `footprint ${services}: one-shot peak ${
          (Math.max(...oneShotPeakRss) / MiB).toFixed(0)
        } MiB`,
      );

      const daemon = await runDaemonFor(ns, fixture, options.daemonSeconds, commands);
      log(
        `footprint ${services}: daemon ${daemon.checks} checks, ` +
          `${(daemon.rss[daemon.rss.length - 1] / MiB).toFixed(0)} MiB at the end`,
      );

      let startup: Startup | undefined;
      if (startupToo) {
        startup = {
          services,
          saveMs: [],
          importMs: [],
          oursMs: [],
          cpuMs: { save: [], import: [], ours: [] },
          labelWritten: true,
        };
        const cpu = (list: number[], run: { cpuMs: number | null }) => {
          if (run.cpuMs !== null) list.push(run.cpuMs);
        };
        for (let i = 0; i < options.runs; i++) {
          const save = inNs(["iptables-nft-save"]);
          commands["startup-save"] ??= shown(save);
          const saved = await timeProcess(save, { timeoutMs: 600_000 });
          startup.saveMs.push(saved.wallMs);
          cpu(startup.cpuMs.save, saved);

          const kube = probeArgv("kube", []);
          commands["startup-import"] ??= shown(kube);
          const imported = await timeProcess(kube, { cwd: ROOT, timeoutMs: 600_000 });
          startup.importMs.push(imported.wallMs);
          cpu(startup.cpuMs.import, imported);

          fixture.setLabel(NODE, LABEL, null);
          const ours = monitorArgv(ns, fixture, ["-terminateOnSuccess"]);
          commands["startup-ours"] ??= `NODE_NAME=${NODE} ${shown(ours)}`;
          const run = await timeProcess(ours, {
            cwd: ROOT,
            env: { NODE_NAME: NODE, NO_COLOR: "1" },
            timeoutMs: 600_000,
          });
          if (run.code !== 0) {
            throw new Error(`-terminateOnSuccess exited ${run.code}: ${run.stderr}`);
          }
          if (fixture.labels(NODE)?.[LABEL] !== "false") startup.labelWritten = false;
          startup.oursMs.push(run.wallMs);
          cpu(startup.cpuMs.ours, run);
        }
        log(
          `footprint ${services}: start-up ${median(startup.oursMs).toFixed(0)} ms ` +
            `(save ${median(startup.saveMs).toFixed(0)}, import ${
              median(startup.importMs).toFixed(0)
            })`,
        );
      }
      return {
        size: {
          services,
          lines: ruleset.lineCount,
          dumpBytes: ruleset.dump.length,
          oneShotPeakRss,
          oneShotMs,
          daemon,
        },
        startup,
      };
    } finally {
      await fixture.stop();
      await link.remove();
    }
  });
}

/** Measures memory and start-up as {@linkcode FootprintOptions} say. */
export async function measureFootprint(options: FootprintOptions): Promise<FootprintResult> {
  const log = options.progress ?? ((message: string) => console.error(message));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const loadAverage = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const commands: Record<string, string> = {};
  const bareArgv = bareProbeArgv();
  commands["floor-bare"] = shown(bareArgv);
  const bare = parseJson(BareProbeSchema, await mustRun(bareArgv, { cwd: ROOT })).memory;
  const kubeArgv = probeArgv("kube", []);
  commands["floor-kube"] = shown(kubeArgv);
  const kubeOnly = parseJson(KubeProbeSchema, await mustRun(kubeArgv, { cwd: ROOT })).memory;
  const sizes: SizeFootprint[] = [];
  let startup: Startup | undefined;
  for (const services of options.sizes) {
    const measured = await measureSize(
      services,
      options,
      commands,
      log,
      services === options.startupSize,
    );
    sizes.push(measured.size);
    startup ??= measured.startup;
  }
  return {
    startedAt,
    loadAverage,
    durationMs: performance.now() - started,
    bare,
    kubeOnly,
    sizes,
    startup,
    commands,
  };
}

// ---- rendering -------------------------------------------------------------------

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(0)} MiB`;
}

function signedMib(bytes: number): string {
  const value = Math.round(bytes / MiB);
  return value >= 0 ? `+${value} MiB` : `${value} MiB`;
}

function cpuOf(values: number[]): string {
  return values.length === 0 ? "n/a" : seconds(median(values));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** The median of the samples in `[from, to)` of a run, as a fraction of its length. */
function window(values: readonly number[], from: number, to: number): number {
  const n = values.length;
  return median(values.slice(Math.floor(n * from), Math.max(Math.floor(n * to), 1)));
}

/** What the daemon's goal allows over the floor at this size (the budget). */
export function daemonBudget(services: number): number | undefined {
  if (services <= 5000) return 24 * MiB;
  if (services <= 20000) return 64 * MiB;
  return undefined;
}

/** The one-shot's peak RSS goal at 5k services and below. */
export const ONE_SHOT_GOAL = 72 * MiB;
/** Start-up may exceed the larger of its two floors by this much. */
export const STARTUP_SLACK_MS = 500;

/** The footprint targets, for the Targets table: name, goal, measured, met. */
export function footprintTargets(
  f: FootprintResult,
): { name: string; goal: string; measured: string; met: boolean }[] {
  const out: { name: string; goal: string; measured: string; met: boolean }[] = [];
  for (const s of f.sizes) {
    const budget = daemonBudget(s.services);
    const end = s.daemon.rss[s.daemon.rss.length - 1];
    if (budget !== undefined) {
      out.push({
        name: `nft, ${s.services} services: RSS of the daemon after ${s.daemon.seconds} s ` +
          `of checks (${s.daemon.checks}), over the client-loaded floor`,
        goal: `<= floor + ${mib(budget)}`,
        measured: `${mib(end)} = floor ${mib(f.kubeOnly.rss)} ${signedMib(end - f.kubeOnly.rss)}`,
        met: end - f.kubeOnly.rss <= budget,
      });
    }
    if (s.services === 5000) {
      const peak = Math.max(...s.oneShotPeakRss);
      out.push({
        name: `nft, ${s.services} services: peak RSS of the one-shot \`-dryRun\``,
        goal: `<= ${mib(ONE_SHOT_GOAL)}`,
        measured: `${mib(peak)} (largest of ${s.oneShotPeakRss.length})`,
        met: peak <= ONE_SHOT_GOAL,
      });
    }
  }
  const st = f.startup;
  if (st !== undefined) {
    const bound = Math.max(median(st.saveMs), median(st.importMs)) + STARTUP_SLACK_MS;
    const ours = median(st.oursMs);
    out.push({
      name: `nft, ${st.services} services, clean: \`-terminateOnSuccess\` start to exit 0, ` +
        "label written",
      goal: "<= max(save, client import) + 0.5 s",
      measured: `${seconds(ours)} (median of ${st.oursMs.length}; bound ${seconds(bound)}: ` +
        `save ${seconds(median(st.saveMs))}, import ${seconds(median(st.importMs))})` +
        (st.labelWritten ? "" : "; **label not written**"),
      met: ours <= bound && st.labelWritten,
    });
  }
  return out;
}

/** The memory and start-up tables, as Markdown lines. */
export function renderFootprint(f: FootprintResult): string[] {
  const out = [
    "## Footprint: memory",
    "",
    `Measured by \`bench/footprint.ts\` on ${f.startedAt.slice(0, 16).replace("T", " ")} UTC in ${
      (f.durationMs / 60000).toFixed(1)
    } minutes (load average ${f.loadAverage} at ` +
    "the start; the 2 cores are shared with other work). Part of `deno task bench`; " +
    "`deno task bench --footprint` measures and rewrites only these sections.",
    "",
    "| target | goal | measured | met |",
    "| --- | --- | --- | --- |",
    ...footprintTargets(f).map((t) =>
      `| ${t.name} | ${t.goal} | ${t.measured} | ${t.met ? "yes" : "**no**"} |`
    ),
    "",
    "Each size is a clean generated nf_tables node (`bench/ruleset.ts`, IPv4, no planted " +
    "rules), loaded once. The one-shot is `-once -dryRun`; the daemon is the real program " +
    "at `-interval=1 -v=2` against the HTTPS API fixture (label and CiliumNode reads), so " +
    "checks follow each other back to back, its RSS sampled every second. The floor is a " +
    "`deno` process that only imports `@kubernetes/client-node`, with the same V8 flags, " +
    "measured in the same run.",
    "",
    "| process | RSS | over the floor |",
    "| --- | --- | --- |",
    `| bare \`deno\` | ${mib(f.bare.rss)} | |`,
    `| \`deno\` with only \`@kubernetes/client-node\` loaded (the floor) | ${
      mib(f.kubeOnly.rss)
    } | |`,
  ];
  for (const s of f.sizes) {
    const peak = Math.max(...s.oneShotPeakRss);
    out.push(
      `| one-shot, ${s.services} services (${s.lines} lines, ${mib(s.dumpBytes)} dump): ` +
        `peak, largest of ${s.oneShotPeakRss.length} | ${mib(peak)} | ${
          signedMib(peak - f.kubeOnly.rss)
        } |`,
    );
    const d = s.daemon;
    const end = d.rss[d.rss.length - 1];
    out.push(
      `| daemon, ${s.services} services, after ${d.seconds} s (${d.checks} checks); ` +
        `median of the first / last third of the samples ${mib(window(d.rss, 0, 1 / 3))} / ${
          mib(window(d.rss, 2 / 3, 1))
        }; peak ${mib(d.peakRss)} | ${mib(end)} | ${signedMib(end - f.kubeOnly.rss)} |`,
    );
  }
  out.push("");
  const st = f.startup;
  if (st !== undefined) {
    out.push(
      "## Footprint: start-up to a verdict",
      "",
      `A clean nf_tables node of ${st.services} services; each row is a process from spawn ` +
        `to exit, median of ${st.oursMs.length}, the three kinds alternating.`,
      "",
      "| process | time | CPU time (user + system) |",
      "| --- | --- | --- |",
      `| \`iptables-nft-save\` alone | ${seconds(median(st.saveMs))} | ${cpuOf(st.cpuMs.save)} |`,
      `| \`deno\` importing only \`@kubernetes/client-node\` | ${seconds(median(st.importMs))} | ${
        cpuOf(st.cpuMs.import)
      } |`,
      `| ours, \`-terminateOnSuccess\`: check, label "false" written, exit 0 | ${
        seconds(median(st.oursMs))
      }${st.labelWritten ? "" : " (**label not written**)"} | ${
        cpuOf(st.cpuMs.ours)
      } (its save included) |`,
      "",
      "On a loaded machine the times stretch with the CPU each process needs; the CPU " +
        "times say what each costs whatever the load. Ours loads the client while the save " +
        "runs under `stdbuf -o` (it finishes into its own buffer while loading the client " +
        "blocks our only JavaScript thread), so its time is about the larger of the two, " +
        "plus what follows the loading on that thread: reading the saved output, parsing, " +
        "matching and two API requests.",
      "",
    );
  }
  out.push("```sh");
  for (const [name, command] of Object.entries(f.commands)) {
    out.push(`# ${name}`);
    out.push(
      command
        .replace(/ip netns exec aim-[0-9a-z-]+ /, "ip netns exec NS ")
        .replaceAll(/\/tmp\/aim-api-[A-Za-z0-9_]+/g, "$API_DIR")
        .replaceAll(`${Deno.execPath()} `, "deno ")
        .replaceAll(`${ROOT}/`, ""),
    );
  }
  out.push("```", "");
  return out;
}

function argValue(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

if (import.meta.main) {
  const sizes = (argValue(Deno.args, "--sizes") ?? "1000,5000,20000").split(",").map(Number);
  const result = await measureFootprint({
    sizes,
    daemonSeconds: Number(argValue(Deno.args, "--daemonSeconds") ?? "60"),
    runs: Number(argValue(Deno.args, "--runs") ?? "5"),
    startupSize: Number(argValue(Deno.args, "--startupSize") ?? "5000"),
  });
  if (Deno.args.includes("--json")) console.log(JSON.stringify(result));
  console.log(renderFootprint(result).join("\n"));
}
