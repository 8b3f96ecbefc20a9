/**
 * Memory of the current process, from the kernel's view (`/proc/self/status`) and from
 * V8's, so the suite can say what a resident set is made of.
 *
 * @module
 */

/** Resident memory in bytes: what the kernel counts and what V8 says it holds. */
export interface MemorySnapshot {
  /** Resident set now (`VmRSS`). */
  rss: number;
  /** Peak resident set so far (`VmHWM`). */
  peakRss: number;
  /** Anonymous pages (heaps, stacks): `RssAnon`. */
  rssAnon: number;
  /** File-backed pages (the deno binary's code and data): `RssFile`. */
  rssFile: number;
  /** V8's JavaScript heap, reserved and in use. */
  heapTotal: number;
  heapUsed: number;
  /** Memory held by V8 for objects outside its heap (buffers). */
  external: number;
}

function statusKiB(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Takes a snapshot of this process's memory. */
export function memorySnapshot(): MemorySnapshot {
  const status = Deno.readTextFileSync("/proc/self/status");
  const v8 = Deno.memoryUsage();
  return {
    rss: statusKiB(status, "VmRSS"),
    peakRss: statusKiB(status, "VmHWM"),
    rssAnon: statusKiB(status, "RssAnon"),
    rssFile: statusKiB(status, "RssFile"),
    heapTotal: v8.heapTotal,
    heapUsed: v8.heapUsed,
    external: v8.external,
  };
}
