/**
 * Runs an external command (no shell) and collects its output, bounded in time, in the
 * bytes it may print and so in the memory that output costs us. The one I/O edge
 * through which iptables is read, so tests can point it at a network namespace
 * (`ip netns exec`) or at other real commands.
 *
 * Every child starts in its own session (`setsid`), so it and anything it starts form
 * one process group that is killed as a whole (with `kill -s KILL -- -PGID`): when the
 * command ends (a grandchild it left behind goes with it), on timeout, on an oversized
 * output, on abort, and for every group still running when this process exits
 * ({@linkcode killAllChildren}).
 */

import { decodeGoUtf8, GoUtf8Decoder } from "../patterns/go_utf8.ts";

/** How a command run ended. */
export type CommandOutcome =
  /** It ran and exited; `signal` is set when a signal killed it (`code` is then 128 + n). */
  | { kind: "exited"; code: number; signal: string | null; stdout: string; stderr: string }
  /** Not found on PATH at all: the tool is not installed. */
  | { kind: "not-found" }
  /** Found, but it could not be started (execve failed, or Deno may not run it). */
  | { kind: "cannot-start"; message: string }
  | { kind: "timeout" }
  /** It printed more than the limit on stdout and was killed. */
  | { kind: "too-large"; limitBytes: number }
  /** The caller's signal aborted it (shutdown). */
  | { kind: "aborted" };

/** How a command may run. */
export interface RunOptions {
  timeoutMs: number;
  /** At most this many bytes of stdout are kept; more kills it. {@linkcode MAX_OUTPUT_BYTES} by default. */
  maxOutputBytes?: number;
  /** Aborting kills the command (shutdown). */
  signal?: AbortSignal;
  /**
   * Takes stdout as it arrives, decoded (a piece never ends inside a character), instead
   * of keeping it: the outcome's `stdout` is then empty. A save prints megabytes, which
   * are parsed as they come and so are never held whole, neither as bytes nor as text.
   */
  onStdout?: (text: string) => void;
  /**
   * The command keeps its stdout in a buffer of its own (`stdbuf -o`, 8 MiB) and writes
   * it when it is done, so it runs to its end while this thread cannot read: the first
   * check, while the Kubernetes client loads. Where stdbuf cannot run it (not installed,
   * not allowed, no libstdbuf.so), the command runs as it is.
   */
  bufferInChild?: boolean;
}

/** Runs `command` with `args`; never throws for a failure of the command itself. */
export type CommandRunner = (
  command: string,
  args: string[],
  options: RunOptions,
) => Promise<CommandOutcome>;

/**
 * The most stdout a command may print: 32 MiB. The largest ruleset we can justify, the
 * benchmark's 20,000-service nf_tables node (148,205 rules, twice the 10,000 Services
 * Kubernetes documents as a cluster's limit), dumps 16.8 MiB; 32 MiB leaves twice that.
 * Output past the limit is dropped at once; what is kept costs its size as text (in
 * pieces, then once joined), unless it is taken as it arrives ({@linkcode RunOptions.onStdout}).
 */
export const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

/** Only the first line of stderr is ever shown; this much of it is kept, the rest read and dropped. */
export const MAX_STDERR_BYTES = 64 * 1024;

/** Bytes asked for by one read (a pipe holds 64 KiB). */
const CHUNK_BYTES = 64 * 1024;
/**
 * Decodes bytes read whole (a rules file) as command output is decoded: each invalid
 * byte becomes one U+FFFD, as Go's regexp sees it, so odd bytes in a rule comment cannot
 * make a read fail.
 */
export function decodeOutput(bytes: Uint8Array): string {
  return decodeGoUtf8(bytes);
}

/** What draining one pipe gave: the text kept, and whether more than the limit arrived. */
interface Drained {
  text: string;
  overflow: boolean;
  /** What `onText` threw, if it did: the read stopped there. */
  takerFailed?: { error: unknown };
}

/**
 * Drains a byte stream, keeping at most `limit` bytes. Reading stdout and stderr at the
 * same time keeps a child that writes megabytes to either pipe from blocking on a full
 * pipe. With `stopAtLimit`, the first byte past the limit ends the read (`onOverflow`
 * kills the command); otherwise the excess is read and dropped. Never rejects: a broken
 * or cancelled pipe keeps what arrived.
 *
 * One 64 KiB buffer serves the whole read, and each read is decoded at once: handed to
 * `onText` when given (nothing is kept), else kept as a piece of text joined at the end.
 * No buffer grows with the output, so megabytes of output leave no large allocation
 * behind in the C heap, only strings the garbage collector takes back.
 */
async function drain(
  reader: ReadableStreamBYOBReader,
  limit: number,
  stopAtLimit: boolean,
  onOverflow: () => void,
  onText?: (text: string) => void,
): Promise<Drained> {
  let chunk = new ArrayBuffer(CHUNK_BYTES);
  const decoder = new GoUtf8Decoder();
  const pieces: string[] = [];
  let takerFailed: { error: unknown } | undefined;
  const take = (text: string) => {
    if (onText === undefined) {
      if (text !== "") pieces.push(text);
      return;
    }
    try {
      onText(text);
    } catch (error) {
      takerFailed ??= { error };
    }
  };
  let filled = 0;
  let overflow = false;
  try {
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(chunk));
      if (value !== undefined) {
        chunk = value.buffer as ArrayBuffer; // the read hands the buffer back
        let bytes: Uint8Array = value;
        if (filled + bytes.length > limit) {
          if (!overflow) {
            overflow = true;
            if (stopAtLimit) {
              pieces.length = 0; // unused: the command is killed
              onOverflow();
              break;
            }
          }
          bytes = bytes.subarray(0, limit - filled);
        }
        if (bytes.length > 0) {
          take(decoder.decode(bytes, { stream: true }));
          filled += bytes.length;
          if (takerFailed !== undefined) {
            onOverflow(); // ends the command: what it prints next has nowhere to go
            break;
          }
        }
      }
      if (done) break;
    }
  } catch {
    // Cancelled after a timeout or an abort, or the pipe broke: keep what arrived.
  }
  if (takerFailed === undefined && !(overflow && stopAtLimit)) take(decoder.decode());
  return { text: pieces.join(""), overflow, takerFailed };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The process groups of the children still running, by their leader's pid. */
const liveGroups = new Map<number, Deno.ChildProcess>();

/**
 * The command that signals a process group. Deno's own `Deno.kill` needs permission to
 * run any program at all, which this program does not have; `kill` (procps) is one
 * more name in --allow-run instead.
 */
const KILL_COMMAND = "kill";

/**
 * Kills the process groups `pgids` with SIGKILL: every process in them, whatever it
 * started in its group. Groups that are gone already are fine. `sync` waits for it
 * (on the way out); otherwise it runs in the background and is reaped when done.
 */
function killGroups(pgids: readonly number[], sync = false): void {
  if (pgids.length === 0) return;
  const command = new Deno.Command(KILL_COMMAND, {
    args: ["-s", "KILL", "--", ...pgids.map((pgid) => `-${pgid}`)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  try {
    if (sync) command.outputSync();
    else command.spawn().status.catch(() => {});
  } catch {
    // No kill command: the leaders are still killed directly by their callers.
  }
}

/**
 * Kills every command still running, with everything it started in its group. Called
 * on the way out (any exit path), so no process we started outlives us.
 */
export function killAllChildren(): void {
  for (const child of liveGroups.values()) {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
  }
  killGroups([...liveGroups.keys()], true);
  liveGroups.clear();
}

/** Kills `child` now (no permission needed for our own child), then its whole group. */
function killTree(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // It has exited already.
  }
  killGroups([child.pid]);
}

/**
 * Starts a long-running child (the `-watch` monitor) in its own process group, which is
 * killed with everything in it when the child exits and by {@linkcode killAllChildren}.
 * Throws as `Deno.Command.spawn` does. `kill` signals the whole group.
 */
export function spawnGrouped(
  command: string,
  args: readonly string[],
): { child: Deno.ChildProcess; kill(signal: Deno.Signal): void } {
  const child = new Deno.Command(command, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const pgid = child.pid;
  liveGroups.set(pgid, child);
  child.status.finally(() => {
    killGroups([pgid]); // whatever it left behind in its group
    liveGroups.delete(pgid);
  }).catch(() => {});
  return {
    child,
    kill(signal) {
      if (signal === "SIGKILL") return killTree(child);
      try {
        child.kill(signal);
      } catch {
        // It has exited already.
      }
    },
  };
}

/** The directories of PATH, as the child would search them. */
function pathDirectories(): string[] {
  const path = Deno.env.get("PATH") ??
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return path.split(":").map((dir) => (dir === "" ? "." : dir));
}

/** The file `command` names on PATH, executable or not, if there is one. */
function findOnPath(command: string): string | undefined {
  const candidates = command.includes("/")
    ? [command]
    : pathDirectories().map((dir) => `${dir}/${command}`);
  for (const candidate of candidates) {
    try {
      if (!Deno.statSync(candidate).isDirectory) return candidate;
    } catch {
      // not there (or not visible to us): keep looking
    }
  }
  return undefined;
}

/**
 * Why a command that exists could not be started, from the error `spawn` threw. `ENOENT`
 * for a file that exists means execve could not find its interpreter (`#!`) or dynamic
 * loader; `EACCES` that it is not executable (or lives on a `noexec` mount).
 */
function whyNotStarted(path: string, error: unknown): string {
  if (error instanceof Deno.errors.NotCapable) {
    return `${path}: Deno may not run it (--allow-run)`;
  }
  const code = error instanceof Error && "code" in error ? String(error.code) : "";
  if (code === "ENOENT") {
    return `${path} exists but execve failed with ENOENT: its interpreter or dynamic loader ` +
      "is missing";
  }
  if (code === "EACCES" || error instanceof Deno.errors.PermissionDenied) {
    return `${path} exists but execve failed with EACCES: it is not executable ` +
      "(or its interpreter is not, or the file system is mounted noexec)";
  }
  return `${path}: ${describe(error)}`;
}

/** What runs a command with {@linkcode RunOptions.bufferInChild}. */
const STDBUF = "stdbuf";
/**
 * The buffer a command keeps its output in (`stdbuf -o`): a 5,000-service dump (4.4 MB)
 * whole, so the save is done by the time the client has loaded; a larger one fills it
 * and then waits at the pipe as without it. It bounds what a node user's rules can make
 * each command hold in memory.
 */
const CHILD_BUFFER_BYTES = 8 * 1024 * 1024;
/** stdbuf's own exit codes: it failed, or it could not run or find the command. */
const STDBUF_FAILED: ReadonlySet<number> = new Set([125, 126, 127]);
/** stdbuf itself cannot work here (not installed, not allowed, no libstdbuf.so). */
let stdbufBroken = false;

/**
 * The real {@linkcode CommandRunner} over `Deno.Command`. The child gets its own process
 * group, which is killed with SIGKILL when the command exits, times out, prints more than
 * `maxOutputBytes` or is aborted; the pipes are drained as they fill.
 */
export const runCommand: CommandRunner = async (command, args, options) => {
  if (!options.bufferInChild || stdbufBroken) return await runPlain(command, args, options);
  const started = performance.now();
  let printed = false;
  const { onStdout } = options;
  const taken = onStdout && ((text: string) => {
    if (text !== "") printed = true;
    onStdout(text);
  });
  const buffered = await runPlain(STDBUF, [`-o${CHILD_BUFFER_BYTES}`, command, ...args], {
    ...options,
    onStdout: taken,
  });
  if (buffered.kind === "not-found" || buffered.kind === "cannot-start") stdbufBroken = true;
  const failed = buffered.kind === "exited" && STDBUF_FAILED.has(buffered.code) && !printed &&
    buffered.stdout === "";
  if (failed && buffered.code === 125) stdbufBroken = true;
  if (!stdbufBroken && !failed) return buffered;
  // Nothing of the command reached the taker: run as it is, it says what went wrong,
  // within what is left of the time it was given.
  const left = Math.max(0, options.timeoutMs - (performance.now() - started));
  return await runPlain(command, args, { ...options, timeoutMs: left });
};

/** {@linkcode runCommand} without stdbuf. */
const runPlain: CommandRunner = async (command, args, options) => {
  if (options.signal?.aborted) return { kind: "aborted" };
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true, // setsid: its own process group, which we can kill as a whole
    }).spawn();
  } catch (error) {
    const found = error instanceof Deno.errors.NotCapable ? command : findOnPath(command);
    if (found === undefined) return { kind: "not-found" };
    return { kind: "cannot-start", message: whyNotStarted(found, error) };
  }
  const pgid = child.pid;
  liveGroups.set(pgid, child);

  const stdoutReader = child.stdout.getReader({ mode: "byob" });
  const stderrReader = child.stderr.getReader({ mode: "byob" });
  let ended: "timeout" | "too-large" | "aborted" | undefined;
  /** Ends the run early: the whole group dies and the reads stop waiting for pipes. */
  const end = (why: "timeout" | "too-large" | "aborted") => {
    ended ??= why;
    killTree(child);
    stdoutReader.cancel().catch(() => {});
    stderrReader.cancel().catch(() => {});
  };
  const limit = options.maxOutputBytes ?? MAX_OUTPUT_BYTES;
  const stdoutDone = drain(
    stdoutReader,
    limit,
    true,
    () => end("too-large"),
    options.onStdout,
  );
  const stderrDone = drain(stderrReader, MAX_STDERR_BYTES, false, () => {});

  // The deadline covers the whole run: the exit and the pipes closing (a grandchild that
  // escaped the group and inherited them could otherwise keep a finished read waiting).
  const timer = setTimeout(() => end("timeout"), options.timeoutMs);
  const onAbort = () => end("aborted");
  options.signal?.addEventListener("abort", onAbort, { once: true });

  let stdout: Drained;
  let stderr: Drained;
  let status: Deno.CommandStatus;
  try {
    const exited = child.status.then((status) => {
      killGroups([pgid]); // whatever it left behind in its group goes with it
      return status;
    });
    [stdout, stderr, status] = await Promise.all([stdoutDone, stderrDone, exited]);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    liveGroups.delete(pgid);
  }
  // A taker that failed is our failure, not the command's: the caller decides what it means.
  if (stdout.takerFailed !== undefined) throw stdout.takerFailed.error;
  if (ended === "too-large") return { kind: "too-large", limitBytes: limit };
  if (ended !== undefined) return { kind: ended };

  return {
    kind: "exited",
    // Deno reports a child killed by a signal as 128 + the signal number, as a shell does.
    code: status.code,
    signal: status.signal,
    stdout: stdout.text,
    stderr: stderr.text,
  };
};
