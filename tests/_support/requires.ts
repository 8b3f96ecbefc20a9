/**
 * Preconditions for tests that need root or a system tool. On a developer laptop a
 * missing precondition skips the test with a clear message; under CI (`CI` set) it
 * fails, so a green CI never hides a test that did not run.
 */

/** Whether this run is CI's (`CI` set): missing requirements fail instead of skipping. */
export const inCI: boolean = (() => {
  const value = Deno.env.get("CI");
  return value !== undefined && value !== "" && value !== "false" && value !== "0";
})();

/** Whether the current process runs as root. */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** Whether `command` can be found on PATH (or is an existing absolute path). */
export function hasCommand(command: string): boolean {
  if (command.includes("/")) {
    try {
      return Deno.statSync(command).isFile;
    } catch {
      return false;
    }
  }
  const path = Deno.env.get("PATH") ??
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const dir of path.split(":")) {
    try {
      if (Deno.statSync(`${dir}/${command}`).isFile) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/**
 * Returns `undefined` when every requirement holds, else the reason. Under CI a missing
 * requirement throws, so the test fails instead of skipping.
 */
export function missing(needs: { root?: boolean; commands?: string[] }): string | undefined {
  const reasons: string[] = [];
  if (needs.root && !isRoot()) reasons.push("root");
  for (const command of needs.commands ?? []) {
    if (!hasCommand(command)) reasons.push(`the command '${command}'`);
  }
  if (reasons.length === 0) return undefined;
  const reason = `needs ${reasons.join(", ")}`;
  if (inCI) {
    throw new Error(`${reason}, which CI must provide (see .ci/run)`);
  }
  console.warn(`skipped: ${reason}`);
  return reason;
}

/**
 * `Deno.test` options that skip (with a message) or, under CI, fail when requirements
 * are missing.
 *
 * @example
 * ```ts
 * Deno.test({ name: "reads nft rules", ...requires({ root: true, commands: ["iptables"] }), fn() {} });
 * ```
 */
export function requires(needs: { root?: boolean; commands?: string[] }): { ignore: boolean } {
  return { ignore: missing(needs) !== undefined };
}
