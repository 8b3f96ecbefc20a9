/**
 * Throw-away network namespaces for tests that need real iptables rules (or a private
 * loopback) without touching the host: each has a unique `aim-` name, `lo` up, and is
 * always deleted afterwards, also when the test fails.
 *
 * @example
 * ```ts
 * Deno.test({
 *   name: "reads legacy rules",
 *   ...netnsRequires({ backends: ["legacy"], families: ["ipv4"] }),
 *   fn: () =>
 *     withNetns(async (ns) => {
 *       await ns.restore("ipv4", "legacy", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
 *       const out = await ns.exec("iptables-legacy", ["-S"]);
 *     }),
 * });
 * ```
 */
import { type CommandRunner, runCommand } from "../../src/iptables/runner.ts";
import type { Family } from "../../src/iptables/types.ts";
import { missing } from "./requires.ts";

/** An iptables backend, named as in the tool names `iptables-nft`/`iptables-legacy`. */
export type Backend = "nft" | "legacy";

/** A live namespace handed to the body of {@linkcode withNetns}. */
export interface Netns {
  /** The namespace name, e.g. `aim-4242-1a2b3c`. */
  readonly name: string;
  /** Runs a command inside the namespace (a {@linkcode CommandRunner}, no shell). */
  readonly run: CommandRunner;
  /**
   * Runs a command inside the namespace and returns its stdout; throws with its stderr
   * unless it exits 0. Default timeout 60 s.
   */
  exec(command: string, args?: string[], options?: { timeoutMs?: number }): Promise<string>;
  /**
   * Loads `ruleset` (iptables-save format) into one backend of one family with
   * `iptables-nft-restore`, `ip6tables-legacy-restore`, ...; tables it names are replaced.
   */
  restore(family: Family, backend: Backend, ruleset: string): Promise<void>;
  /** The argv that runs `command` inside the namespace, for spawning long-lived processes. */
  wrap(command: string, args?: string[]): { command: string; args: string[] };
}

const DEFAULT_TIMEOUT_MS = 60_000;
let counter = 0;

function uniqueName(): string {
  const random = crypto.getRandomValues(new Uint8Array(3));
  const hex = Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("");
  counter += 1;
  return `aim-${Deno.pid}-${counter}-${hex}`;
}

/** The restore command for a family and backend, e.g. `ip6tables-legacy-restore`. */
export function restoreCommand(family: Family, backend: Backend): string {
  return `${family === "ipv4" ? "iptables" : "ip6tables"}-${backend}-restore`;
}

async function mustRun(
  run: CommandRunner,
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<string> {
  const outcome = await run(command, args, { timeoutMs });
  const shown = [command, ...args].join(" ");
  switch (outcome.kind) {
    case "exited":
      if (outcome.code === 0) return outcome.stdout;
      throw new Error(`${shown} exited with code ${outcome.code}: ${outcome.stderr.trim()}`);
    case "not-found":
      throw new Error(`${shown}: command not found`);
    case "timeout":
      throw new Error(`${shown}: did not finish within ${timeoutMs} ms`);
    case "cannot-start":
      throw new Error(`${shown}: ${outcome.message}`);
    case "too-large":
    case "aborted":
      throw new Error(`${shown}: ${outcome.kind}`);
  }
}

/**
 * Loads an nft script into `ns` through a temporary file (`nft -f`, or `nft -j -f` for a
 * JSON script, which can make names the text syntax cannot).
 */
export async function loadNft(
  ns: Netns,
  script: string,
  options: { json?: boolean } = {},
): Promise<void> {
  const file = await Deno.makeTempFile({ prefix: "aim-nft-" });
  try {
    await Deno.writeTextFile(file, script);
    await ns.exec("nft", options.json ? ["-j", "-f", file] : ["-f", file]);
  } finally {
    await Deno.remove(file);
  }
}

/**
 * Creates a namespace, runs `body` with it and deletes it afterwards whatever happens.
 * A failure to delete is reported without hiding the body's own error.
 */
export async function withNetns<T>(body: (ns: Netns) => Promise<T>): Promise<T> {
  const name = uniqueName();
  await mustRun(runCommand, "ip", ["netns", "add", name], DEFAULT_TIMEOUT_MS);
  const wrap = (command: string, args: string[] = []) => ({
    command: "ip",
    args: ["netns", "exec", name, command, ...args],
  });
  const run: CommandRunner = (command, args, options) => {
    const wrapped = wrap(command, args);
    return runCommand(wrapped.command, wrapped.args, options);
  };
  const ns: Netns = {
    name,
    run,
    wrap,
    exec: (command, args = [], options = {}) =>
      mustRun(run, command, args, options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    async restore(family, backend, ruleset) {
      const file = await Deno.makeTempFile({ prefix: "aim-ruleset-" });
      try {
        await Deno.writeTextFile(file, ruleset);
        // -w: legacy tools share one lock file across namespaces with other tests.
        await mustRun(run, restoreCommand(family, backend), ["-w", "30", file], DEFAULT_TIMEOUT_MS);
      } finally {
        await Deno.remove(file);
      }
    },
  };

  let result: T;
  try {
    await mustRun(run, "ip", ["link", "set", "lo", "up"], DEFAULT_TIMEOUT_MS);
    result = await body(ns);
  } catch (error) {
    const problem = await deleteNetns(name);
    if (problem !== undefined) console.error(problem);
    throw error;
  }
  const problem = await deleteNetns(name);
  if (problem !== undefined) throw new Error(problem);
  return result;
}

/** Deletes a namespace; returns what went wrong, if anything. */
async function deleteNetns(name: string): Promise<string | undefined> {
  const outcome = await runCommand("ip", ["netns", "delete", name], {
    timeoutMs: DEFAULT_TIMEOUT_MS,
  });
  if (outcome.kind === "exited" && outcome.code === 0) return undefined;
  return `could not delete network namespace ${name}: ${JSON.stringify(outcome)}`;
}

const inCI = (() => {
  const value = Deno.env.get("CI");
  return value !== undefined && value !== "" && value !== "false" && value !== "0";
})();

/**
 * Why the legacy backend of `family` cannot hold tables here, or `undefined` when it can.
 * Legacy tables need the kernel's `ip_tables`/`ip6_tables` (built in, or a module that
 * `modprobe` can load); inside a namespace they are then created on first use.
 */
export function legacyKernelMissing(family: Family): string | undefined {
  const module = family === "ipv4" ? "ip_tables" : "ip6_tables";
  const proc = `/proc/net/${module}_names`;
  const present = () => {
    try {
      Deno.statSync(proc);
      return true;
    } catch {
      return false;
    }
  };
  if (present()) return undefined;
  try {
    new Deno.Command("modprobe", { args: [module], stdout: "null", stderr: "null" }).outputSync();
  } catch {
    // No modprobe: the check below says what is missing.
  }
  if (present()) return undefined;
  return `the kernel's ${module} for legacy iptables (${proc} is absent and 'modprobe ${module}' failed)`;
}

/**
 * `Deno.test` options for a test that uses {@linkcode withNetns}: needs root and `ip`,
 * plus the restore/save tools of each backend and family listed, plus kernel support for
 * the legacy backend. Skips with the reason on a laptop; fails under CI (`CI` set).
 */
export function netnsRequires(
  needs: { backends?: Backend[]; families?: Family[] } = {},
): { ignore: boolean } {
  const commands = ["ip"];
  const families = needs.families ?? [];
  for (const backend of needs.backends ?? []) {
    for (const family of families) {
      const tool = family === "ipv4" ? "iptables" : "ip6tables";
      commands.push(
        `${tool}-${backend}`,
        `${tool}-${backend}-save`,
        restoreCommand(family, backend),
      );
    }
  }
  if (missing({ root: true, commands }) !== undefined) return { ignore: true };
  if (needs.backends?.includes("legacy")) {
    for (const family of families) {
      const reason = legacyKernelMissing(family);
      if (reason === undefined) continue;
      if (inCI) throw new Error(`needs ${reason}, which CI must provide (see .ci/run)`);
      console.warn(`skipped: needs ${reason}`);
      return { ignore: true };
    }
  }
  return { ignore: false };
}
