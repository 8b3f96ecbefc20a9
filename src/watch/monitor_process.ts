/**
 * The `xtables-monitor` process: how it is started (line-buffered through `stdbuf`) and
 * with which arguments for the families a check reads live.
 *
 * @module
 */

import type { Config } from "../cli/config.ts";
import { spawnGrouped } from "../iptables/runner.ts";
import type { Family } from "../iptables/types.ts";

/** A running monitor as the supervisor sees it; tests supply fakes. */
export interface MonitorProcess {
  readonly pid: number;
  /** Its stdout, line by line, ending when the pipe closes. */
  readonly lines: AsyncIterable<string>;
  /** Resolves when it has exited and been reaped. */
  readonly status: Promise<{ code: number; signal: string | null }>;
  /** The end of what it wrote to stderr, for error messages. */
  stderrTail(): string;
  kill(signal: Deno.Signal): void;
}

/** Starts `command args`; throws as `Deno.Command.spawn` does when it cannot. */
export type MonitorSpawner = (command: string, args: readonly string[]) => MonitorProcess;

/** A line longer than this is cut (no real event line comes near it). */
const MAX_LINE_CHARS = 64 * 1024;
const STDERR_TAIL_CHARS = 2048;

async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let partial = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    partial += chunk;
    let newline = partial.indexOf("\n");
    while (newline >= 0) {
      yield partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      newline = partial.indexOf("\n");
    }
    if (partial.length > MAX_LINE_CHARS) {
      yield partial.slice(0, MAX_LINE_CHARS);
      partial = "";
    }
  }
  if (partial !== "") yield partial;
}

/**
 * The real spawner: `Deno.Command` in its own process group (see `spawnGrouped`), stdin
 * closed, stdout and stderr piped.
 */
export const spawnMonitor: MonitorSpawner = (command, args) => {
  const { child, kill } = spawnGrouped(command, args);
  let tail = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      tail = (tail + chunk).slice(-STDERR_TAIL_CHARS);
    }
  })().catch(() => {});
  return {
    pid: child.pid,
    lines: linesOf(child.stdout),
    status: (async () => {
      const status = await child.status;
      await stderrDone;
      return { code: status.code, signal: status.signal };
    })(),
    stderrTail: () => tail,
    kill,
  };
};

/**
 * The monitor's arguments for the families scanned live; no family filter when the nft
 * view is on (it reads tables of every family: inet, arp, bridge, netdev too).
 */
export function monitorArguments(
  families: readonly Family[],
  options: { everyFamily?: boolean } = {},
): string[] {
  const args = ["--event"];
  if (options.everyFamily) return args;
  const v4 = families.includes("ipv4");
  const v6 = families.includes("ipv6");
  if (v4 && !v6) args.push("-4");
  if (v6 && !v4) args.push("-6");
  return args;
}

/** The families whose rules a check reads from the live ruleset (not from a file). */
export function watchedFamilies(config: Config): Family[] {
  const families: Family[] = [];
  if (config.rulesFile === undefined) families.push("ipv4");
  if (config.ipv6 && config.rulesFile6 === undefined) families.push("ipv6");
  return families;
}
