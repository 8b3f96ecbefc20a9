/**
 * A full garbage collection, for a process that is about to sit idle.
 *
 * @module
 */

/**
 * Hands a finished check's garbage back at once. Between checks the daemon only waits,
 * so V8 would collect the previous check's strings and rules only once a later check
 * had grown the heap by another 40 % (`--heap-growing-percent`): until then the node
 * pays for two rulesets. One full collection per check costs a few milliseconds per
 * megabyte still in use. It needs V8's `--expose-gc` (the monitor task in deno.json,
 * and so the compiled binary, runs with it); without it, this does nothing.
 */
export function collectGarbage(): void {
  const gc: unknown = Reflect.get(globalThis, "gc");
  if (typeof gc === "function") gc();
}
