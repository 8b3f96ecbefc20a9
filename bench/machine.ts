/**
 * What the benchmarks ran on, for BENCHMARKS.md: CPU, cores, memory, kernel and the
 * versions of every tool timed.
 *
 * @module
 */
import { goIptablesVersion } from "./go_baseline.ts";
import { hasGnuTime, mustRun } from "./measure.ts";

/** The machine and tool versions. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  deno: string;
  v8: string;
  go: string;
  goIptables: string;
  iptables: string;
  peakRssMethod: string;
  loadAverage: string;
}

async function firstLine(argv: string[]): Promise<string> {
  try {
    return (await mustRun(argv)).split("\n")[0].trim();
  } catch (error) {
    return `unknown (${error instanceof Error ? error.message.split("\n")[0] : error})`;
  }
}

function procField(file: string, pattern: RegExp): string | undefined {
  try {
    return pattern.exec(Deno.readTextFileSync(file))?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/** Reads the machine description. */
export async function describeMachine(): Promise<Machine> {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const memKiB = Number(procField("/proc/meminfo", /^MemTotal:\s+(\d+) kB$/m) ?? 0);
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round((memKiB / 1024 / 1024) * 10) / 10,
    kernel: `${Deno.osRelease()} (${Deno.build.arch})`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    go: await firstLine(["go", "version"]),
    goIptables: await goIptablesVersion().catch(() => "not installed"),
    iptables: [
      await firstLine(["iptables-nft", "--version"]),
      await firstLine(["iptables-legacy", "--version"]),
    ].join(", "),
    peakRssMethod: hasGnuTime()
      ? "GNU time (`/usr/bin/time -f %M`)"
      : "polling /proc/PID/status VmHWM every 5 ms (GNU time not installed)",
    loadAverage: procField("/proc/loadavg", /^(\S+ \S+ \S+)/) ?? "unknown",
  };
}
