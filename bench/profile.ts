/**
 * Short summaries of CPU profiles for BENCHMARKS.md: V8's `.cpuprofile` of our one-shot
 * (`deno run --cpu-prof`), and `perf` of `iptables-nft-save` where perf is installed.
 *
 * @module
 */
import { z } from "zod";
import { mustRun } from "./measure.ts";

const CpuProfile = z.object({
  nodes: z.array(z.object({
    id: z.number(),
    callFrame: z.object({
      functionName: z.string(),
      url: z.string(),
      lineNumber: z.number(),
    }),
  })),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});

/** Where a profiled process spent its time: total, idle, and the top functions by self time. */
export interface ProfileSummary {
  totalMs: number;
  /** Waiting (for `iptables-save`, files): V8's `(idle)`. */
  idleMs: number;
  garbageCollectorMs: number;
  top: { name: string; selfMs: number }[];
}

function frameName(frame: { functionName: string; url: string; lineNumber: number }): string {
  const file = frame.url.split("/").pop() ?? "";
  const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
  const shortName = name.length > 60 ? `${name.slice(0, 57)}...` : name;
  return file === "" ? shortName : `${shortName} (${file}:${frame.lineNumber + 1})`;
}

/** Summarises a `.cpuprofile` file: the `top` functions by self time. */
export async function summariseCpuProfile(path: string, top = 12): Promise<ProfileSummary> {
  const profile = CpuProfile.parse(JSON.parse(await Deno.readTextFile(path)));
  const names = new Map(profile.nodes.map((node) => [node.id, frameName(node.callFrame)]));
  const self = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    totalUs += delta;
    const name = names.get(id) ?? "?";
    self.set(name, (self.get(name) ?? 0) + delta);
  });
  const ms = (us: number | undefined) => (us ?? 0) / 1000;
  return {
    totalMs: ms(totalUs),
    idleMs: ms(self.get("(idle)")),
    garbageCollectorMs: ms(self.get("(garbage collector)")),
    top: [...self.entries()]
      .filter(([name]) => name !== "(idle)")
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: ms(us) })),
  };
}

function perfLines(report: string, top: number): string[] {
  return report.split("\n")
    .filter((line) => /^\s+\d+\.\d+%/.test(line))
    .slice(0, top)
    .map((line) => line.trim().replace(/(\s+-)+$/, "").replace(/\s+/g, " "));
}

/**
 * A `perf record` file summarised as `perf report` prints it: the shared objects by
 * overhead, then the top symbols.
 */
export async function summarisePerf(dataFile: string, top = 8): Promise<string[]> {
  const report = (sort: string) =>
    mustRun(["perf", "report", "-i", dataFile, "--stdio", "--no-children", "--sort", sort]);
  return [
    "by shared object:",
    ...perfLines(await report("dso"), 5),
    "by symbol:",
    ...perfLines(await report("dso,symbol"), top),
  ];
}
