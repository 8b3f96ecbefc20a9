/**
 * The monitor as a long-running process for end-to-end tests: started the way
 * `deno task monitor` runs it (same permissions and V8 flags, see `cli.ts`), optionally
 * inside a network namespace, with what it prints collected while it runs.
 */
import { monitorArgs, ROOT } from "./cli.ts";
import type { Netns } from "./netns.ts";

/** How a daemon ended and how long after the signal. */
export interface DaemonExit {
  code: number;
  signal: Deno.Signal | null;
  /** Milliseconds from the signal sent by {@linkcode DaemonProcess.stop} to the exit. */
  elapsedMs: number;
}

/** What {@linkcode startDaemon} needs. */
export interface DaemonOptions {
  /** The program's flags, e.g. `["-interval=1", "-events"]`. */
  args: string[];
  /** `NODE_NAME`; unset when undefined. */
  nodeName?: string;
  /** Runs it inside this namespace. */
  netns?: Netns;
  /**
   * Paths added to the task's `--allow-read=` list, as an operator widening its
   * permissions would (e.g. a kubeconfig outside the paths the task may read).
   */
  extraRead?: string[];
}

/** A running monitor. */
export interface DaemonProcess {
  readonly pid: number;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Everything it wrote to stdout so far. */
  stdout(): string;
  /** Whether it has ended. */
  exited(): boolean;
  /** Resolves when it ends (streams drained). */
  readonly status: Promise<Deno.CommandStatus>;
  /**
   * Sends `signal` and waits up to `timeoutMs` for the exit; kills it (and throws)
   * when it does not end in time.
   */
  stop(signal?: Deno.Signal, timeoutMs?: number): Promise<DaemonExit>;
  /** Kills it if still running and waits for the end; for `finally`. */
  kill(): Promise<void>;
}

async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }) {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) sink.text += chunk;
}

/**
 * The task's flags with `paths` added to its `--allow-read=` list. A second
 * `--allow-read=` flag would not add to the first: Deno keeps only the last one.
 */
export function widenRead(flags: readonly string[], paths: readonly string[]): string[] {
  if (paths.length === 0) return [...flags];
  const index = flags.findIndex((flag) => flag.startsWith("--allow-read="));
  if (index === -1) {
    if (flags.includes("--allow-read")) return [...flags];
    const main = flags.length - 1;
    return [...flags.slice(0, main), `--allow-read=${paths.join(",")}`, flags[main]];
  }
  const widened = [...flags];
  widened[index] = `${flags[index]},${paths.join(",")}`;
  return widened;
}

/** Starts the monitor; the caller must end it with {@linkcode DaemonProcess.kill}. */
export function startDaemon(options: DaemonOptions): DaemonProcess {
  const argv = [...widenRead(monitorArgs(), options.extraRead ?? []), ...options.args];
  const wrapped = options.netns?.wrap(Deno.execPath(), argv) ??
    { command: Deno.execPath(), args: argv };
  const env: Record<string, string> = { NO_COLOR: "1" };
  if (options.nodeName !== undefined) env.NODE_NAME = options.nodeName;
  const child = new Deno.Command(wrapped.command, {
    args: wrapped.args,
    env,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { text: "" };
  const err = { text: "" };
  const drained = Promise.all([collect(child.stdout, out), collect(child.stderr, err)]);
  let ended = false;
  const status = (async () => {
    const result = await child.status;
    await drained;
    ended = true;
    return result;
  })();

  const kill = async () => {
    if (!ended) {
      try {
        child.kill("SIGKILL");
      } catch {
        // ended meanwhile
      }
    }
    await status;
  };

  return {
    pid: child.pid,
    stderr: () => err.text,
    stdout: () => out.text,
    exited: () => ended,
    status,
    kill,
    async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 10_000) {
      const sent = performance.now();
      child.kill(signal);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), timeoutMs);
      });
      try {
        const result = await Promise.race([child.status, late]);
        if (result === "late") {
          await kill();
          throw new Error(`the monitor did not end within ${timeoutMs} ms of ${signal}`);
        }
        const elapsedMs = performance.now() - sent;
        await drained;
        ended = true;
        return { code: result.code, signal: result.signal, elapsedMs };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The last `count` lines of a log, for failure messages. */
export function lastLines(text: string, count = 30): string {
  return text.trimEnd().split("\n").slice(-count).join("\n");
}

/** Polls `condition` until it holds; fails with the daemon's log when it does not in time. */
export async function waitFor(
  what: string,
  daemon: DaemonProcess,
  condition: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (daemon.exited()) {
      throw new Error(`the monitor ended while waiting for ${what}:\n${daemon.stderr()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `no ${what} within ${timeoutMs} ms; the monitor's last log lines:\n` +
          lastLines(daemon.stderr()),
      );
    }
    await delay(25);
  }
}
