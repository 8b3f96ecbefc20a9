/**
 * In-process measurements of our check, run by the suite inside the benchmark's network
 * namespace (`ip netns exec NS deno run ... bench/probe.ts MODE`), so that reading the
 * rules costs exactly one save process per backend, as in the real daemon.
 *
 * Modes (one JSON object on stdout):
 * - `daemon --input DIR --checks N [--kube]`: N calls of `scan()` sharing one
 *   `FamilyCaches`, as the daemon makes them each interval (the first is cold, the
 *   others see unchanged rules and patterns); wall time, our own CPU time, the CPU time
 *   of the save processes, and RSS after each check. `--kube` first loads
 *   `@kubernetes/client-node`, as the daemon does.
 * - `phases --input DIR --reps N [--rulesOut FILE]`: reading (the save commands),
 *   parsing and matching timed apart, N times each; `--rulesOut` writes the parsed rules
 *   (JSON, lines by table) for the Go baseline's matching-alone run.
 * - `match --input DIR --rules FILE --reps N`: matching alone (`checkRules` without a
 *   verdict cache) on the rules in FILE, the same file the Go baseline's `-matchOnly`
 *   reads; needs no namespace.
 * - `kube`: only loads `@kubernetes/client-node` and reports memory (its share of RSS).
 *
 * @module
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { z } from "zod";
import { type CheckReport, checkRules, FamilyCaches, type FamilyInput } from "../src/check.ts";
import { parseCommandLine } from "../src/cli/config.ts";
import { type CommandOutcome, runCommand } from "../src/iptables/runner.ts";
import { parseIptablesSave } from "../src/iptables/save_parser.ts";
import type { FamilyRead, RulesSource, TableRules } from "../src/iptables/types.ts";
import { loadAllowlist } from "../src/patterns/allowlist.ts";
import { createLogger } from "../src/report/log.ts";
import { scan } from "../src/scan.ts";
import { type MemorySnapshot, memorySnapshot } from "./memory.ts";

/** One daemon check as the probe saw it. */
export interface ProbeCheck {
  wallMs: number;
  /** CPU time (user + system) of this process during the check. */
  cpuMs: number;
  /** CPU time of the save processes the check ran (reaped children). */
  childCpuMs: number;
  unexpected: number;
  memory: MemorySnapshot;
}

/** What `daemon` mode prints. */
export interface DaemonProbe {
  mode: "daemon";
  kubeLoadMs: number | null;
  checks: ProbeCheck[];
  /** Memory after the checks and `idleMs` of doing nothing, as between a daemon's checks. */
  idleMs: number;
  afterIdle: MemorySnapshot;
}

/** What `match` mode prints. */
export interface MatchProbe {
  mode: "match";
  rules: number;
  /** Loading (and compiling) the allowlist, once. */
  allowlistMs: number;
  /** `checkRules` without a verdict cache, per repetition (the first is cold). */
  matchMs: number[];
  unexpected: string[];
}

/** What `phases` mode prints: per repetition, in milliseconds. */
export interface PhasesProbe {
  mode: "phases";
  /** The save commands, all backends at once as `readFamily` runs them (wall time). */
  readMs: number[];
  /** Bytes the save commands printed. */
  saveBytes: number;
  parseMs: number[];
  /** Loading the allowlist directory (the first time includes compiling patterns). */
  allowlistMs: number[];
  /** `checkRules` without a verdict cache: every rule matched. */
  matchMs: number[];
  /** `checkRules` with a cache that already holds every verdict. */
  cachedMatchMs: number[];
  lines: number;
  unexpected: string[];
  /** SHA-256 of each table's lines, sorted, each followed by `\n` (as the Go baseline takes it). */
  digests: Record<string, string>;
}

/** What `kube` mode prints. */
export interface KubeProbe {
  mode: "kube";
  kubeLoadMs: number;
  memory: MemorySnapshot;
}

const SAVE_TIMEOUT_MS = 300_000;
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time of reaped children (cutime + cstime of /proc/self/stat), in milliseconds. */
function childrenCpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function loadKubeClient(): Promise<number> {
  const started = performance.now();
  await import("@kubernetes/client-node");
  return performance.now() - started;
}

function configFor(input: string) {
  const line = parseCommandLine(["-once", "-dryRun", `-input=${input}`], {});
  if (line.kind !== "run") throw new Error(`bad probe configuration: ${line.stderr}`);
  return line.config;
}

async function daemonMode(
  input: string,
  checks: number,
  kube: boolean,
  idleMs: number,
): Promise<DaemonProbe> {
  const kubeLoadMs = kube ? await loadKubeClient() : null;
  const config = configFor(input);
  const log = createLogger({ verbosity: 0 });
  const cache = new FamilyCaches();
  const out: ProbeCheck[] = [];
  for (let i = 0; i < checks; i++) {
    const cpu0 = ownCpuMs();
    const child0 = childrenCpuMs();
    const t0 = performance.now();
    const report = await scan(config, { log, cache });
    const wallMs = performance.now() - t0;
    const cpuMs = ownCpuMs() - cpu0;
    const childCpuMs = childrenCpuMs() - child0;
    const unexpected = report.families.reduce(
      (n, f) => n + f.tables.reduce((m, t) => m + t.unexpected.length, 0),
      0,
    );
    out.push({ wallMs, cpuMs, childCpuMs, unexpected, memory: memorySnapshot() });
  }
  await new Promise((resolve) => setTimeout(resolve, idleMs));
  return { mode: "daemon", kubeLoadMs, checks: out, idleMs, afterIdle: memorySnapshot() };
}

function unexpectedOf(report: CheckReport): string[] {
  return report.families.flatMap((f) =>
    f.tables.flatMap((t) => t.unexpected.map((u) => `${t.table}\t${u.rule}`))
  );
}

/** The lines of each table, all sources together. */
function linesByTable(sources: RulesSource[]): Record<string, string[]> {
  const byTable: Record<string, string[]> = {};
  for (const source of sources) {
    for (const { table, rules } of source.tables) {
      const lines = byTable[table] ??= [];
      for (const rule of rules) lines.push(rule.text);
    }
  }
  return byTable;
}

/** SHA-256 of the lines in sorted order, each followed by `\n`, as the Go baseline takes it. */
function digest(lines: readonly string[]): string {
  const hash = createHash("sha256");
  for (const line of [...lines].sort()) hash.update(`${line}\n`);
  return hash.digest("hex");
}

const RulesFile = z.record(z.string(), z.array(z.string()));

async function matchMode(input: string, rulesFile: string, reps: number): Promise<MatchProbe> {
  const byTable = RulesFile.parse(JSON.parse(await Deno.readTextFile(rulesFile)));
  const tables: TableRules[] = Object.entries(byTable).map(([table, lines]) => ({
    table,
    rules: lines.map((text) => ({ chain: text.split(" ", 2)[1] ?? "", text })),
  }));
  const t0 = performance.now();
  const allowlist = await loadAllowlist(input);
  const allowlistMs = performance.now() - t0;
  const read: FamilyRead = {
    family: "ipv4",
    sources: [{ family: "ipv4", source: rulesFile, tables }],
    errors: [],
  };
  const matchMs: number[] = [];
  let unexpected: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const t1 = performance.now();
    const report = checkRules([{ family: "ipv4", allowlist, read }], { node: null });
    matchMs.push(performance.now() - t1);
    unexpected = unexpectedOf(report);
  }
  const rules = tables.reduce((n, t) => n + t.rules.length, 0);
  return { mode: "match", rules, allowlistMs, matchMs, unexpected };
}

const SAVE_COMMANDS = ["iptables-nft-save", "iptables-legacy-save"] as const;

/** The save commands' output as `readFamily` gets it: every backend at once. */
async function readSaves(): Promise<{ ms: number; outputs: string[] }> {
  const t0 = performance.now();
  const outcomes: CommandOutcome[] = await Promise.all(
    SAVE_COMMANDS.map((command) => runCommand(command, [], { timeoutMs: SAVE_TIMEOUT_MS })),
  );
  const ms = performance.now() - t0;
  const outputs = outcomes.map((outcome, i) => {
    if (outcome.kind !== "exited" || outcome.code !== 0) {
      throw new Error(`${SAVE_COMMANDS[i]} failed: ${JSON.stringify(outcome).slice(0, 300)}`);
    }
    return outcome.stdout;
  });
  return { ms, outputs };
}

function sourcesOf(outputs: string[]): RulesSource[] {
  const sources: RulesSource[] = [];
  outputs.forEach((text, i) => {
    const parsed = parseIptablesSave(text);
    if (parsed.truncated) {
      throw new Error(
        `${SAVE_COMMANDS[i]}: line ${parsed.truncated.line}: ${parsed.truncated.message}`,
      );
    }
    if (parsed.tables.length > 0) {
      sources.push({ family: "ipv4", source: SAVE_COMMANDS[i], tables: parsed.tables });
    }
  });
  return sources;
}

async function phasesMode(input: string, reps: number, rulesOut?: string): Promise<PhasesProbe> {
  const result: PhasesProbe = {
    mode: "phases",
    readMs: [],
    saveBytes: 0,
    parseMs: [],
    allowlistMs: [],
    matchMs: [],
    cachedMatchMs: [],
    lines: 0,
    unexpected: [],
    digests: {},
  };
  for (let rep = 0; rep < reps; rep++) {
    const { ms, outputs } = await readSaves();
    result.readMs.push(ms);
    result.saveBytes = outputs.reduce((n, text) => n + text.length, 0);

    const t0 = performance.now();
    const sources = sourcesOf(outputs);
    result.parseMs.push(performance.now() - t0);

    const t1 = performance.now();
    const allowlist = await loadAllowlist(input);
    result.allowlistMs.push(performance.now() - t1);

    const read: FamilyRead = { family: "ipv4", sources, errors: [] };
    const inputs: FamilyInput[] = [{ family: "ipv4", allowlist, read }];
    const t2 = performance.now();
    const report = checkRules(inputs, { node: null });
    result.matchMs.push(performance.now() - t2);

    const cache = new FamilyCaches();
    checkRules(inputs, { node: null, cache });
    const t3 = performance.now();
    checkRules(inputs, { node: null, cache });
    result.cachedMatchMs.push(performance.now() - t3);

    result.lines = sources.reduce(
      (n, s) => n + s.tables.reduce((m, t) => m + t.rules.length, 0),
      0,
    );
    result.unexpected = unexpectedOf(report);
    if (rep === 0) {
      const byTable = linesByTable(sources);
      for (const [table, lines] of Object.entries(byTable)) result.digests[table] = digest(lines);
      if (rulesOut !== undefined) await Deno.writeTextFile(rulesOut, JSON.stringify(byTable));
    }
  }
  return result;
}

const Args = z.discriminatedUnion("mode", [
  z.object({
    mode: z.literal("daemon"),
    input: z.string(),
    checks: z.coerce.number().int().min(1),
    kube: z.boolean(),
    idleMs: z.coerce.number().int().min(0).default(0),
  }),
  z.object({
    mode: z.literal("match"),
    input: z.string(),
    rules: z.string(),
    reps: z.coerce.number().int().min(1),
  }),
  z.object({
    mode: z.literal("phases"),
    input: z.string(),
    reps: z.coerce.number().int().min(1),
    rulesOut: z.string().optional(),
  }),
  z.object({ mode: z.literal("kube") }),
]);

/** Reads `MODE --name value ... [--kube]`. */
function parseArgs(args: string[]): z.infer<typeof Args> {
  const raw: Record<string, string | boolean> = { mode: args[0] ?? "", kube: false };
  for (let i = 1; i < args.length; i++) {
    const name = args[i].replace(/^--/, "");
    if (name === "kube") raw.kube = true;
    else raw[name] = args[++i] ?? "";
  }
  return Args.parse(raw);
}

if (import.meta.main) {
  const args = parseArgs(Deno.args);
  let output: DaemonProbe | PhasesProbe | MatchProbe | KubeProbe;
  switch (args.mode) {
    case "daemon":
      output = await daemonMode(args.input, args.checks, args.kube, args.idleMs);
      break;
    case "match":
      output = await matchMode(args.input, args.rules, args.reps);
      break;
    case "phases":
      output = await phasesMode(args.input, args.reps, args.rulesOut);
      break;
    case "kube": {
      const kubeLoadMs = await loadKubeClient();
      output = { mode: "kube", kubeLoadMs, memory: memorySnapshot() };
      break;
    }
  }
  console.log(JSON.stringify(output));
}
