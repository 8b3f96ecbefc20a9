/**
 * Timing and memory of whole processes, and the statistics the suite reports. A process
 * is timed from spawn to exit by the suite's clock; its peak resident set comes from GNU
 * `time` (`/usr/bin/time -f %M`, the largest of the process and the children it waited
 * for) or, where that is not installed, from polling `/proc/PID/status` (`VmHWM`).
 *
 * @module
 */

/** One finished process. */
export interface TimedRun {
  wallMs: number;
  code: number;
  stdout: string;
  stderr: string;
  /** Peak resident set in bytes, when it could be measured. */
  peakRss: number | null;
  /** How `peakRss` was measured. */
  rssMethod: "gnu-time" | "proc-polling";
  /** User + system CPU time of the process and the children it waited for (GNU time only). */
  cpuMs: number | null;
}

const GNU_TIME = "/usr/bin/time";
const TIME_FORMAT = "aim-peak-rss-kib %M aim-cpu-s %U %S";
const POLL_MS = 5;

/** Whether GNU time is installed (Debian package `time`). */
export function hasGnuTime(): boolean {
  try {
    return Deno.statSync(GNU_TIME).isFile;
  } catch {
    return false;
  }
}

/** The argv that runs `argv` under GNU time, writing the peak RSS to `reportFile`. */
export function underGnuTime(argv: string[], reportFile: string): string[] {
  return [GNU_TIME, "-f", TIME_FORMAT, "-o", reportFile, ...argv];
}

function vmHwm(pid: number): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null; // exited between polls
  }
}

/**
 * Runs `argv` to completion and measures it. Throws when it cannot start or when it runs
 * longer than `timeoutMs` (then it is killed).
 */
export async function timeProcess(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs: number },
): Promise<TimedRun> {
  const gnuTime = hasGnuTime();
  const report = gnuTime ? await Deno.makeTempFile({ prefix: "aim-time-" }) : "";
  const command = gnuTime ? underGnuTime(argv, report) : argv;
  try {
    const started = performance.now();
    const child = new Deno.Command(command[0], {
      args: command.slice(1),
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let polledPeak: number | null = null;
    const poller = gnuTime ? undefined : setInterval(() => {
      const now = vmHwm(child.pid);
      if (now !== null && (polledPeak === null || now > polledPeak)) polledPeak = now;
    }, POLL_MS);
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, options.timeoutMs);
    let output: Deno.CommandOutput;
    try {
      output = await child.output();
    } finally {
      clearTimeout(timer);
      if (poller !== undefined) clearInterval(poller);
    }
    const wallMs = performance.now() - started;
    if (killed) {
      throw new Error(`${argv.join(" ")} did not finish within ${options.timeoutMs} ms`);
    }
    const decoder = new TextDecoder();
    let peakRss: number | null = polledPeak;
    let cpuMs: number | null = null;
    if (gnuTime) {
      const text = await Deno.readTextFile(report);
      const match = /aim-peak-rss-kib (\d+)/.exec(text);
      peakRss = match ? Number(match[1]) * 1024 : null;
      const cpu = /aim-cpu-s ([\d.]+) ([\d.]+)/.exec(text);
      cpuMs = cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : null;
    }
    return {
      wallMs,
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
      peakRss,
      rssMethod: gnuTime ? "gnu-time" : "proc-polling",
      cpuMs,
    };
  } finally {
    if (gnuTime) await Deno.remove(report).catch(() => {});
  }
}

/** Runs `argv`, which must exit 0, and returns its stdout. */
export async function mustRun(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<string> {
  const run = await timeProcess(argv, { ...options, timeoutMs: options.timeoutMs ?? 600_000 });
  if (run.code !== 0) {
    throw new Error(
      `${argv.join(" ")} exited with code ${run.code}: ${run.stderr.trim().slice(0, 2000)}`,
    );
  }
  return run.stdout;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The largest of `values` that are known. */
export function maxKnown(values: readonly (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : Math.max(...known);
}
