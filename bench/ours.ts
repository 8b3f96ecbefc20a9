/**
 * How the suite runs our program: the one-shot exactly as `deno task monitor` runs it
 * (its `deno run` flags read from deno.json), and the in-process probe
 * (`bench/probe.ts`) with the same V8 flags; plus the schemas of what they print.
 *
 * @module
 */
import { z } from "zod";
import { monitorArgs, ROOT } from "../tests/_support/cli.ts";
import type { MemorySnapshot } from "./memory.ts";
import type { DaemonProbe, KubeProbe, MatchProbe, PhasesProbe } from "./probe.ts";

export { ROOT };

const PROBE = `${ROOT}/bench/probe.ts`;
const BARE_PROBE = `${ROOT}/bench/bare_probe.ts`;

/** The monitor task's `--v8-flags=...` (the linear-time regexp engine), for the probes. */
export function v8Flags(): string {
  const flag = monitorArgs().find((arg) => arg.startsWith("--v8-flags="));
  if (flag === undefined) throw new Error("the monitor task in deno.json has no --v8-flags");
  return flag;
}

/** Our one-shot check: `deno task monitor -once -dryRun -output json -input=DIR`. */
export function oneShotArgv(input: string, extraDenoFlags: string[] = []): string[] {
  const args = monitorArgs();
  const script = args.indexOf(`${ROOT}/main.ts`);
  return [
    Deno.execPath(),
    ...args.slice(0, script),
    ...extraDenoFlags,
    ...args.slice(script),
    "-once",
    "-dryRun",
    "-output",
    "json",
    `-input=${input}`,
  ];
}

/** The in-process probe in one of its modes, optionally with more V8 flags. */
export function probeArgv(mode: string, args: string[], moreV8Flags: string[] = []): string[] {
  const flags = [v8Flags(), ...moreV8Flags].join(",");
  return [Deno.execPath(), "run", "--quiet", flags, "-A", PROBE, mode, ...args];
}

/** A bare `deno` process that only reports its memory. */
export function bareProbeArgv(): string[] {
  return [Deno.execPath(), "run", "--quiet", "-A", BARE_PROBE];
}

/** The one-shot's JSON report (`-output json`), as far as the suite reads it. */
export const OneShotReport = z.object({
  unexpected: z.boolean(),
  families: z.array(z.object({
    family: z.string(),
    source: z.string(),
    tables: z.array(z.object({
      table: z.string(),
      rules: z.number().int(),
      unexpected: z.array(z.object({ chain: z.string(), rule: z.string() })),
    })),
  })),
  errors: z.array(z.unknown()),
});
export type OneShotReport = z.infer<typeof OneShotReport>;

/** `table<TAB>rule` of every unexpected rule in a one-shot report. */
export function unexpectedOf(report: OneShotReport): string[] {
  return report.families.flatMap((f) =>
    f.tables.flatMap((t) => t.unexpected.map((u) => `${t.table}\t${u.rule}`))
  );
}

const Memory: z.ZodType<MemorySnapshot> = z.object({
  rss: z.number(),
  peakRss: z.number(),
  rssAnon: z.number(),
  rssFile: z.number(),
  heapTotal: z.number(),
  heapUsed: z.number(),
  external: z.number(),
});

export const DaemonProbeSchema: z.ZodType<DaemonProbe> = z.object({
  mode: z.literal("daemon"),
  kubeLoadMs: z.number().nullable(),
  checks: z.array(z.object({
    wallMs: z.number(),
    cpuMs: z.number(),
    childCpuMs: z.number(),
    unexpected: z.number().int(),
    memory: Memory,
  })).min(1),
  idleMs: z.number(),
  afterIdle: Memory,
});

export const PhasesProbeSchema: z.ZodType<PhasesProbe> = z.object({
  mode: z.literal("phases"),
  readMs: z.array(z.number()).min(1),
  saveBytes: z.number(),
  parseMs: z.array(z.number()),
  allowlistMs: z.array(z.number()),
  matchMs: z.array(z.number()),
  cachedMatchMs: z.array(z.number()),
  lines: z.number().int(),
  unexpected: z.array(z.string()),
  digests: z.record(z.string(), z.string()),
});

export const MatchProbeSchema: z.ZodType<MatchProbe> = z.object({
  mode: z.literal("match"),
  rules: z.number().int(),
  allowlistMs: z.number(),
  matchMs: z.array(z.number()).min(1),
  unexpected: z.array(z.string()),
});

export const KubeProbeSchema: z.ZodType<KubeProbe> = z.object({
  mode: z.literal("kube"),
  kubeLoadMs: z.number(),
  memory: Memory,
});

export const BareProbeSchema = z.object({ mode: z.literal("bare"), memory: Memory });
