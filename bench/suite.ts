/**
 * The benchmark suite: our one-shot and daemon checks against the Go original's
 * algorithm (`bench/go_baseline/`), on the same generated kube-proxy rulesets loaded
 * into throw-away network namespaces, with both iptables backends. Writes BENCHMARKS.md.
 *
 * Run: `deno task bench` (the whole suite, about 8 minutes on 2 cores), or
 * `deno run <the task's flags> bench/suite.ts --small --no-write` for the quick mode the
 * smoke test runs (50 services, one run of everything, no file written).
 *
 * @module
 */
import { inKubeProxyCreationOrder } from "./creation_order.ts";
import { generateRuleset, type PlantedRule } from "./ruleset.ts";
import { withNetns } from "../tests/_support/netns.ts";
import { buildGoBaseline, goCheckArgs, GoCheckOutput, goMatchOnly } from "./go_baseline.ts";
import type { GoMatchOutput } from "./go_baseline.ts";
import { describeMachine, type Machine } from "./machine.ts";
import { maxKnown, median, mustRun, type TimedRun, timeProcess } from "./measure.ts";
import {
  bareProbeArgv,
  BareProbeSchema,
  DaemonProbeSchema,
  KubeProbeSchema,
  MatchProbeSchema,
  oneShotArgv,
  OneShotReport,
  PhasesProbeSchema,
  probeArgv,
  ROOT,
  unexpectedOf,
} from "./ours.ts";
import type { MemorySnapshot } from "./memory.ts";
import type { DaemonProbe, MatchProbe, PhasesProbe } from "./probe.ts";
import { type ProfileSummary, summariseCpuProfile, summarisePerf } from "./profile.ts";
import { renderMarkdown } from "./report.ts";
import { ownedSections } from "./api_transport.ts";
import { hostileBench } from "./hostile.ts";
import { SECTION_START as NFT_SECTION_START } from "./nft_view.ts";
import { type FootprintResult, measureFootprint, renderFootprint } from "./footprint.ts";

/** The allowlist every run uses: the shipped IPv4 patterns (relative to the repo root). */
export const INPUT = "patterns/ipv4";
/** Seed of the generated rulesets. */
export const SEED = 20240611;

/** One benchmarked ruleset and how often each measurement runs on it. */
export interface ScenarioSpec {
  id: string;
  backend: "nft" | "legacy";
  services: number;
  /** Runs of the Go baseline (each one process, one check); 0 skips it. */
  goRuns: number;
  oneShotRuns: number;
  /** Checks in one daemon probe (the first is cold); 0 skips it. */
  daemonChecks: number;
  /** Load `@kubernetes/client-node` in the daemon probe, as the daemon does. */
  kube: boolean;
  phasesReps: number;
  /** Write the rules for the matching-alone comparison from this scenario. */
  matchAlone: boolean;
  /** Profile one extra one-shot (and `iptables-nft-save` with perf, if installed). */
  profile: boolean;
  /** Also load the ruleset with its chains created in sorted order (the save tool's worst case). */
  sortedCreation: boolean;
  /** Run the daemon probe a second time with V8's `--optimize-for-size`. */
  forSize: boolean;
}

/** The Go baseline's figures on one scenario. */
export interface GoFigures {
  oneShotMs: number[];
  peakRss: (number | null)[];
  /** In-process check time: what each interval of the Go daemon costs. */
  checkMs: number[];
  listMs: number[];
  /** Compiling the patterns plus the MatchString loop, as the original does each check. */
  matchMs: number[];
  loopMs: number[];
  processes: number;
  iptables: string;
  lines: number;
  unexpected: string[];
  digests: Record<string, string>;
}

/** Our figures on one scenario. */
export interface OurFigures {
  oneShotMs: number[];
  peakRss: (number | null)[];
  lines: number;
  unexpected: string[];
  source: string;
}

/** Everything measured on one scenario. */
export interface ScenarioResult {
  spec: ScenarioSpec;
  ruleCount: number;
  lineCount: number;
  planted: string[];
  go?: GoFigures;
  ours: OurFigures;
  phases?: PhasesProbe;
  daemon?: DaemonProbe;
  profile?: ProfileSummary;
  /** `perf` of the save command: top symbols, labelled by the creation order profiled. */
  savePerf: { label: string; symbols: string[] }[];
  /** The daemon probe again with V8's `--optimize-for-size` (memory vs CPU). */
  daemonForSize?: DaemonProbe;
  /** The same ruleset with its chains created in sorted order. */
  sortedCreation?: { saveMs: number[]; oneShotMs: number[] };
  /** The planted rules, Go's unexpected rules and ours are the same set. */
  agree: boolean;
  /** Go listed exactly the lines we parsed (table digests), when both were measured. */
  sameRules: boolean | null;
}

/** Memory of processes that check nothing, for comparison with the daemon. */
export interface MemoryFloor {
  bare: MemorySnapshot;
  kubeOnly: MemorySnapshot;
  kubeLoadMs: number;
}

/** Matching alone, same rules and patterns, in one process each. */
export interface MatchAlone {
  scenario: string;
  go: GoMatchOutput;
  ours: MatchProbe;
  agree: boolean;
}

/** The whole suite's result. */
export interface SuiteResult {
  small: boolean;
  startedAt: string;
  durationMs: number;
  machine: Machine;
  scenarios: ScenarioResult[];
  matchAlone?: MatchAlone;
  memory: MemoryFloor;
  /** Memory at 1k/5k/20k services and start-up to a verdict (`bench/footprint.ts`). */
  footprint?: FootprintResult;
  commands: Record<string, string>;
}

/** The scenarios of the full suite, sized for about 8 minutes on 2 cores. */
export const FULL_SCENARIOS: ScenarioSpec[] = [
  {
    id: "nft-5k",
    backend: "nft",
    services: 5000,
    goRuns: 3,
    oneShotRuns: 5,
    daemonChecks: 12,
    kube: true,
    phasesReps: 3,
    matchAlone: true,
    profile: true,
    sortedCreation: true,
    forSize: true,
  },
  {
    id: "legacy-1k",
    backend: "legacy",
    services: 1000,
    goRuns: 2,
    oneShotRuns: 5,
    daemonChecks: 8,
    kube: false,
    phasesReps: 5,
    matchAlone: false,
    profile: false,
    sortedCreation: false,
    forSize: false,
  },
  {
    id: "legacy-20k",
    backend: "legacy",
    services: 20000,
    goRuns: 0,
    oneShotRuns: 3,
    daemonChecks: 0,
    kube: false,
    phasesReps: 2,
    matchAlone: false,
    profile: false,
    sortedCreation: false,
    forSize: false,
  },
  {
    id: "nft-20k",
    backend: "nft",
    services: 20000,
    goRuns: 0,
    oneShotRuns: 3,
    daemonChecks: 0,
    kube: false,
    phasesReps: 1,
    matchAlone: false,
    profile: true,
    sortedCreation: false,
    forSize: false,
  },
];

/** The same scenarios at 50 services with one run of everything: the smoke test's mode. */
export const SMALL_SCENARIOS: ScenarioSpec[] = FULL_SCENARIOS.map((spec) => ({
  ...spec,
  services: 50,
  goRuns: spec.id === "nft-20k" || spec.id === "legacy-20k" ? 0 : 1,
  oneShotRuns: 1,
  daemonChecks: spec.daemonChecks > 0 ? 2 : 0,
  phasesReps: spec.phasesReps > 0 ? 1 : 0,
}));

const ONE_SHOT_TIMEOUT_MS = 600_000;
/** The real daemon sleeps minutes between checks; the probe waits this long for V8 to tidy. */
const IDLE_MS_FULL = 10_000;
const MATCH_REPS_FULL = 9;

let log = (message: string): void => {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
};

function plantedKeys(planted: PlantedRule[]): string[] {
  return planted.map((p) => `${p.table}\t${p.rule}`).sort();
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** A directory whose `iptables` is the legacy one, for go-iptables (it runs `iptables`). */
async function legacyPathDir(parent: string): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: parent, prefix: "legacy-iptables-" });
  const target = await Deno.realPath("/usr/sbin/iptables-legacy");
  await Deno.symlink(target, `${dir}/iptables`);
  return dir;
}

function parseJson<T>(schema: { parse(value: unknown): T }, text: string, what: string): T {
  try {
    return schema.parse(JSON.parse(text));
  } catch (error) {
    throw new Error(`${what} printed unexpected output: ${String(error)}\n${text.slice(0, 500)}`);
  }
}

interface Context {
  goBinary: string;
  legacyDir: string;
  tempDir: string;
  small: boolean;
  commands: Record<string, string>;
}

async function runScenario(spec: ScenarioSpec, ctx: Context): Promise<ScenarioResult> {
  const ruleset = generateRuleset({
    services: spec.services,
    family: "ipv4",
    seed: SEED,
    userRules: true,
  });
  log(
    `${spec.id}: ${spec.services} services, ${ruleset.ruleCount} rules, ` +
      `${ruleset.lineCount} checked lines (${spec.backend})`,
  );
  return await withNetns(async (ns) => {
    await ns.restore("ipv4", spec.backend, inKubeProxyCreationOrder(ruleset.dump, SEED));
    const goArgv = (checks: number) => {
      const args = goCheckArgs(INPUT, checks);
      const wrapped = spec.backend === "legacy"
        ? ns.wrap("env", [`PATH=${ctx.legacyDir}:${Deno.env.get("PATH")}`, ctx.goBinary, ...args])
        : ns.wrap(ctx.goBinary, args);
      return [wrapped.command, ...wrapped.args];
    };
    const inNs = (argv: string[]) => {
      const wrapped = ns.wrap(argv[0], argv.slice(1));
      return [wrapped.command, ...wrapped.args];
    };

    // Go and our one-shots interleaved, so a change in machine load hits both alike.
    const goRuns: { run: TimedRun; output: GoCheckOutput }[] = [];
    const ourRuns: { run: TimedRun; report: OneShotReport }[] = [];
    for (let i = 0; i < Math.max(spec.goRuns, spec.oneShotRuns); i++) {
      if (i < spec.goRuns) {
        const argv = goArgv(1);
        ctx.commands[`go-${spec.backend}`] ??= argv.join(" ").replace(
          /PATH=\S+ /,
          "PATH=$LEGACY_IPTABLES_DIR:$PATH ",
        );
        const run = await timeProcess(argv, { cwd: ROOT, timeoutMs: ONE_SHOT_TIMEOUT_MS });
        if (run.code !== 0) throw new Error(`Go baseline failed: ${run.stderr.slice(0, 1000)}`);
        goRuns.push({ run, output: parseJson(GoCheckOutput, run.stdout, "the Go baseline") });
        log(`${spec.id}: Go baseline run ${i + 1}: ${run.wallMs.toFixed(0)} ms`);
      }
      if (i < spec.oneShotRuns) {
        const argv = inNs(oneShotArgv(INPUT));
        ctx.commands["ours-one-shot"] ??= argv.join(" ");
        const run = await timeProcess(argv, { cwd: ROOT, timeoutMs: ONE_SHOT_TIMEOUT_MS });
        if (run.code !== 1) {
          throw new Error(
            `our one-shot exited ${run.code} (1 expected): ${run.stderr.slice(0, 1000)}`,
          );
        }
        ourRuns.push({ run, report: parseJson(OneShotReport, run.stdout, "our one-shot") });
        log(`${spec.id}: our one-shot run ${i + 1}: ${run.wallMs.toFixed(0)} ms`);
      }
    }

    let phases: PhasesProbe | undefined;
    if (spec.phasesReps > 0) {
      const rulesOut = `${ctx.tempDir}/${spec.id}-rules.json`;
      const argv = inNs(probeArgv("phases", [
        "--input",
        INPUT,
        "--reps",
        `${spec.phasesReps}`,
        "--rulesOut",
        rulesOut,
      ]));
      ctx.commands["probe-phases"] ??= argv.join(" ");
      phases = parseJson(PhasesProbeSchema, await mustRun(argv, { cwd: ROOT }), "the phases probe");
      log(`${spec.id}: phases measured`);
    }

    let daemon: DaemonProbe | undefined;
    if (spec.daemonChecks > 0) {
      const args = ["--input", INPUT, "--checks", `${spec.daemonChecks}`];
      if (spec.kube) args.push("--kube");
      args.push("--idleMs", `${ctx.small ? 0 : IDLE_MS_FULL}`);
      const argv = inNs(probeArgv("daemon", args));
      ctx.commands[spec.kube ? "probe-daemon-kube" : "probe-daemon"] ??= argv.join(" ");
      daemon = parseJson(DaemonProbeSchema, await mustRun(argv, { cwd: ROOT }), "the daemon probe");
      log(`${spec.id}: daemon checks measured`);
    }

    const savePerf: ScenarioResult["savePerf"] = [];
    const perfSave = async (label: string) => {
      if (spec.backend !== "nft" || !hasPerf()) return;
      const data = `${ctx.tempDir}/${spec.id}-${savePerf.length}.perf`;
      const perfArgv = inNs(["perf", "record", "-q", "-o", data, "--", "iptables-nft-save"]);
      ctx.commands["perf-iptables-nft-save"] ??= perfArgv.join(" ");
      try {
        await mustRun(perfArgv);
        savePerf.push({ label, symbols: await summarisePerf(data) });
      } catch (error) {
        log(`perf of iptables-nft-save failed, left out: ${String(error).slice(0, 200)}`);
      }
    };

    let daemonForSize: DaemonProbe | undefined;
    if (spec.forSize && spec.daemonChecks > 0) {
      const args = ["--input", INPUT, "--checks", `${spec.daemonChecks}`, "--idleMs", "0"];
      if (spec.kube) args.push("--kube");
      const argv = inNs(probeArgv("daemon", args, ["--optimize-for-size"]));
      ctx.commands["probe-daemon-optimize-for-size"] ??= argv.join(" ");
      daemonForSize = parseJson(
        DaemonProbeSchema,
        await mustRun(argv, { cwd: ROOT }),
        "the daemon probe",
      );
      log(`${spec.id}: daemon checks with --optimize-for-size measured`);
    }

    let profile: ProfileSummary | undefined;
    if (spec.profile) {
      const dir = await Deno.makeTempDir({ dir: ctx.tempDir, prefix: "cpuprof-" });
      const argv = inNs(oneShotArgv(INPUT, ["--cpu-prof", `--cpu-prof-dir=${dir}`]));
      ctx.commands["ours-profile"] ??= argv.join(" ");
      await timeProcess(argv, { cwd: ROOT, timeoutMs: ONE_SHOT_TIMEOUT_MS });
      const [file] = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".cpuprofile"));
      if (file === undefined) throw new Error("deno --cpu-prof wrote no profile");
      profile = await summariseCpuProfile(`${dir}/${file.name}`);
      if (!spec.sortedCreation) await perfSave("chains created in kube-proxy-like order");
      log(`${spec.id}: profiled`);
    }

    let sortedCreation: ScenarioResult["sortedCreation"];
    if (spec.sortedCreation) {
      await ns.restore("ipv4", spec.backend, ruleset.dump); // chains created sorted
      sortedCreation = { saveMs: [], oneShotMs: [] };
      const save = inNs([`iptables-${spec.backend}-save`]);
      for (let i = 0; i < (ctx.small ? 1 : 2); i++) {
        const saved = await timeProcess(save, { timeoutMs: ONE_SHOT_TIMEOUT_MS });
        sortedCreation.saveMs.push(saved.wallMs);
        const run = await timeProcess(inNs(oneShotArgv(INPUT)), {
          cwd: ROOT,
          timeoutMs: ONE_SHOT_TIMEOUT_MS,
        });
        sortedCreation.oneShotMs.push(run.wallMs);
      }
      if (spec.profile) await perfSave("chains created in sorted order");
      log(`${spec.id}: chains created in sorted order measured`);
    }

    const planted = plantedKeys(ruleset.userRules);
    const ours: OurFigures = {
      oneShotMs: ourRuns.map((r) => r.run.wallMs),
      peakRss: ourRuns.map((r) => r.run.peakRss),
      lines: ourRuns[0].report.families.reduce(
        (n, f) => n + f.tables.reduce((m, t) => m + t.rules, 0),
        0,
      ),
      unexpected: unexpectedOf(ourRuns[0].report).sort(),
      source: ourRuns[0].report.families.map((f) => f.source).join(", "),
    };
    let go: GoFigures | undefined;
    if (goRuns.length > 0) {
      const first = goRuns[0].output.checks[0];
      go = {
        oneShotMs: goRuns.map((r) => r.run.wallMs),
        peakRss: goRuns.map((r) => r.run.peakRss),
        checkMs: goRuns.map((r) => r.output.checks[0].totalMs),
        listMs: goRuns.map((r) => r.output.checks[0].listMs),
        matchMs: goRuns.map((r) => r.output.checks[0].compileMs + r.output.checks[0].loopMs),
        loopMs: goRuns.map((r) => r.output.checks[0].loopMs),
        processes: first.processes,
        iptables: goRuns[0].output.iptables,
        lines: Object.values(first.tables).reduce((n, t) => n + t.rules, 0),
        unexpected: first.unexpected.map((u) => `${u.table}\t${u.rule}`).sort(),
        digests: Object.fromEntries(
          Object.entries(first.tables).map(([name, t]) => [name, t.digest]),
        ),
      };
    }
    const agree = sameSet(ours.unexpected, planted) &&
      (go === undefined || sameSet(go.unexpected, planted)) &&
      (phases === undefined || sameSet(phases.unexpected, planted)) &&
      (daemon === undefined || daemon.checks.every((c) => c.unexpected === planted.length));
    const digestList = (digests: Record<string, string>) =>
      Object.entries(digests).map(([table, digest]) => `${table}=${digest}`);
    const sameRules = go !== undefined && phases !== undefined
      ? sameSet(digestList(go.digests), digestList(phases.digests))
      : null;
    return {
      spec,
      ruleCount: ruleset.ruleCount,
      lineCount: ruleset.lineCount,
      planted,
      go,
      ours,
      phases,
      daemon,
      profile,
      savePerf,
      daemonForSize,
      sortedCreation,
      agree,
      sameRules,
    };
  });
}

function hasPerf(): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/perf`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

async function measureMemoryFloor(ctx: Context): Promise<MemoryFloor> {
  const bareArgv = bareProbeArgv();
  ctx.commands["probe-bare"] = bareArgv.join(" ");
  const bare = parseJson(BareProbeSchema, await mustRun(bareArgv, { cwd: ROOT }), "bare probe");
  const kubeArgv = probeArgv("kube", []);
  ctx.commands["probe-kube"] = kubeArgv.join(" ");
  const kube = parseJson(KubeProbeSchema, await mustRun(kubeArgv, { cwd: ROOT }), "kube probe");
  return { bare: bare.memory, kubeOnly: kube.memory, kubeLoadMs: kube.kubeLoadMs };
}

async function measureMatchAlone(
  scenario: string,
  rulesFile: string,
  ctx: Context,
): Promise<MatchAlone> {
  const reps = ctx.small ? 2 : MATCH_REPS_FULL;
  const go = await goMatchOnly(ctx.goBinary, INPUT, rulesFile, reps);
  const argv = probeArgv("match", ["--input", INPUT, "--rules", rulesFile, "--reps", `${reps}`]);
  ctx.commands["probe-match"] = argv.join(" ");
  ctx.commands["go-match"] =
    `${ctx.goBinary} -input ${INPUT} -matchOnly ${rulesFile} -reps ${reps}`;
  const ours = parseJson(MatchProbeSchema, await mustRun(argv, { cwd: ROOT }), "match probe");
  const goUnexpected = go.unexpected.map((u) => `${u.table}\t${u.rule}`);
  return { scenario, go, ours, agree: sameSet(goUnexpected, ours.unexpected) };
}

/** What the footprint measures: three sizes for the full suite, one tiny one for the smoke test. */
function footprintOptions(small: boolean) {
  return {
    sizes: small ? [50] : [1000, 5000, 20000],
    daemonSeconds: small ? 5 : 60,
    runs: small ? 1 : 3,
    startupSize: small ? 50 : 5000,
    progress: (message: string) => log(message),
  };
}

/**
 * Replaces the footprint sections of an existing BENCHMARKS.md (or puts them before its
 * Memory section), leaving everything else as the last full run wrote it.
 */
export function spliceFootprint(markdown: string, section: string[]): string {
  const lines = markdown.split("\n");
  const isFootprint = (line: string) => line.startsWith("## Footprint");
  let start = lines.findIndex(isFootprint);
  let end = start;
  if (start === -1) {
    start = lines.findIndex((line) => line === "## Memory");
    if (start === -1) start = lines.length;
    end = start;
  } else {
    while (end < lines.length && (isFootprint(lines[end]) || !lines[end].startsWith("## "))) end++;
  }
  return [...lines.slice(0, start), ...section, ...lines.slice(end)].join("\n");
}

/** Runs the suite; `small` is the smoke test's quick mode; progress goes to `progress`. */
export async function runSuite(
  options: { small: boolean; progress?: (message: string) => void },
): Promise<SuiteResult> {
  if (options.progress !== undefined) log = options.progress;
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const tempDir = await Deno.makeTempDir({ prefix: "aim-bench-" });
  try {
    const commands: Record<string, string> = {};
    const goBinary = await buildGoBaseline(tempDir);
    commands["go-build"] =
      "cd bench/go_baseline && GOPATH=/usr/share/gocode GO111MODULE=off go build -o go_baseline .";
    const ctx: Context = {
      goBinary,
      legacyDir: await legacyPathDir(tempDir),
      tempDir,
      small: options.small,
      commands,
    };
    const machine = await describeMachine();
    log(`machine: ${machine.cpu}, ${machine.cores} cores, load ${machine.loadAverage}`);
    const memory = await measureMemoryFloor(ctx);
    const scenarios: ScenarioResult[] = [];
    let matchAlone: MatchAlone | undefined;
    for (const spec of options.small ? SMALL_SCENARIOS : FULL_SCENARIOS) {
      const result = await runScenario(spec, ctx);
      scenarios.push(result);
      if (spec.matchAlone && result.phases !== undefined) {
        matchAlone = await measureMatchAlone(spec.id, `${tempDir}/${spec.id}-rules.json`, ctx);
        log(`${spec.id}: matching alone measured`);
      }
    }
    const footprint = await measureFootprint(footprintOptions(options.small));
    return {
      small: options.small,
      startedAt,
      durationMs: performance.now() - started,
      machine,
      scenarios,
      matchAlone,
      memory,
      footprint,
      commands,
    };
  } finally {
    await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  }
}

/** The figure a smoke test can check: every measured number is a finite, positive number. */
export function missingFigures(result: SuiteResult): string[] {
  const missing: string[] = [];
  const need = (ok: boolean, what: string) => {
    if (!ok) missing.push(what);
  };
  const positive = (values: readonly (number | null)[]) =>
    values.length > 0 && values.every((v) => v !== null && Number.isFinite(v) && v > 0);
  for (const s of result.scenarios) {
    need(positive(s.ours.oneShotMs), `${s.spec.id}: our one-shot time`);
    need(positive(s.ours.peakRss), `${s.spec.id}: our one-shot peak RSS`);
    if (s.spec.goRuns > 0) {
      need(s.go !== undefined && positive(s.go.oneShotMs), `${s.spec.id}: Go one-shot time`);
      need(s.go !== undefined && positive(s.go.checkMs), `${s.spec.id}: Go check time`);
      need(s.go !== undefined && positive(s.go.listMs), `${s.spec.id}: Go list phase`);
      need(s.go !== undefined && positive(s.go.matchMs), `${s.spec.id}: Go match phase`);
    }
    if (s.spec.phasesReps > 0) {
      const p = s.phases;
      need(p !== undefined && positive(p.readMs), `${s.spec.id}: read phase`);
      need(p !== undefined && positive(p.parseMs), `${s.spec.id}: parse phase`);
      need(p !== undefined && positive(p.matchMs), `${s.spec.id}: match phase`);
    }
    if (s.spec.daemonChecks > 0) {
      const d = s.daemon;
      need(d !== undefined && positive(d.checks.map((c) => c.wallMs)), `${s.spec.id}: checks`);
      need(d !== undefined && positive(d.checks.map((c) => c.cpuMs)), `${s.spec.id}: check CPU`);
      need(d !== undefined && positive([d.afterIdle.rss]), `${s.spec.id}: daemon RSS`);
    }
  }
  need(positive([result.memory.bare.rss, result.memory.kubeOnly.rss]), "bare and kube RSS");
  const f = result.footprint;
  need(
    f !== undefined && f.sizes.length > 0 &&
      f.sizes.every((s) =>
        positive(s.oneShotPeakRss) && positive(s.daemon.rss) && s.daemon.checks > 0
      ),
    "footprint: one-shot and daemon memory",
  );
  need(
    f?.startup !== undefined && positive(f.startup.oursMs) && f.startup.labelWritten,
    "footprint: start-up with the label written",
  );
  if (result.scenarios.some((s) => s.spec.matchAlone)) {
    const m = result.matchAlone;
    need(m !== undefined && positive(m.go.loopMs) && positive(m.ours.matchMs), "matching alone");
  }
  return missing;
}

/** The largest peak RSS among our one-shot runs of a scenario. */
export function ourPeakRss(s: ScenarioResult): number | null {
  return maxKnown(s.ours.peakRss);
}

export { median };

if (import.meta.main) {
  const args = new Set(Deno.args);
  const known = new Set(["--small", "--no-write", "--footprint"]);
  const outIndex = Deno.args.indexOf("--out");
  const out = outIndex >= 0 ? Deno.args[outIndex + 1] : `${ROOT}/BENCHMARKS.md`;
  for (const [i, arg] of Deno.args.entries()) {
    if (!known.has(arg) && arg !== "--out" && i !== outIndex + 1) {
      console.error(
        `unknown argument ${arg}\n` +
          "usage: bench/suite.ts [--small] [--footprint] [--no-write] [--out FILE]",
      );
      Deno.exit(2);
    }
  }
  if (args.has("--footprint")) {
    // Only memory and start-up, spliced into the file the last full run wrote.
    const footprint = await measureFootprint(footprintOptions(args.has("--small")));
    const section = renderFootprint(footprint);
    if (args.has("--no-write")) {
      console.log(section.join("\n"));
    } else {
      const before = await Deno.readTextFile(out).catch(() => "# Benchmarks\n");
      await Deno.writeTextFile(out, spliceFootprint(before, section));
      await mustRun([Deno.execPath(), "fmt", "--quiet", out], { cwd: ROOT });
      log(`wrote the footprint sections of ${out}`);
    }
    Deno.exit(0);
  }
  const result = await runSuite({ small: args.has("--small") });
  // The nft view's section (bench/nft_view.ts) is measured by its own script: kept as it is.
  const previous = await Deno.readTextFile(out).catch(() => "");
  const kept = previous.indexOf(NFT_SECTION_START) >= 0
    ? previous.slice(previous.indexOf(NFT_SECTION_START))
    : "";
  const markdown = kept === ""
    ? renderMarkdown(result)
    : `${renderMarkdown(result).trimEnd()}\n\n${kept}`;
  if (args.has("--no-write")) {
    console.log(markdown);
  } else {
    // Sections other scripts write (bench/api_transport.ts) are carried over.
    const owned = await Deno.readTextFile(out).then(ownedSections, () => []);
    await Deno.writeTextFile(out, [markdown.trimEnd(), ...owned].join("\n\n") + "\n");
    // Laid out as `deno fmt` would, so `deno task check` passes on the generated file.
    await mustRun([Deno.execPath(), "fmt", "--quiet", out], { cwd: ROOT });
    log(`wrote ${out}`);
  }
  if (!args.has("--small")) await hostileBench(out, !args.has("--no-write")); // its own section
  const missing = missingFigures(result);
  if (missing.length > 0 || result.scenarios.some((s) => !s.agree)) {
    console.error(
      `incomplete: ${missing.join("; ")}; agreement: ${
        result.scenarios.map((s) => `${s.spec.id}=${s.agree}`).join(" ")
      }`,
    );
    Deno.exit(1);
  }
}
