/**
 * Runs an external command (no shell) and collects its output, with a hard timeout.
 * The one I/O edge through which iptables is read, so tests can point it at a network
 * namespace (`ip netns exec`) or at other real commands.
 */

import { GoUtf8Decoder } from "../patterns/go_utf8.ts";

/** How a command run ended. */
export type CommandOutcome =
  | { kind: "exited"; code: number; stdout: string; stderr: string }
  | { kind: "not-found" }
  | { kind: "timeout" }
  | { kind: "denied"; message: string };

/** Runs `command` with `args`; never throws for a failure of the command itself. */
export type CommandRunner = (
  command: string,
  args: string[],
  options: { timeoutMs: number },
) => Promise<CommandOutcome>;

/** Bytes asked for by one read (a pipe holds 64 KiB). */
const CHUNK_BYTES = 64 * 1024;
/** At most this many spare read buffers are kept. */
const MAX_KEPT_CHUNKS = 8;

/**
 * Spare read buffers. The daemon reads megabytes of rules at every check; reading them
 * through the same few buffers each time, decoding each piece as it arrives, allocates
 * no buffer per read and none the size of the output, so that memory does not pile up
 * outside the JavaScript heap between collections.
 */
const spareChunks: ArrayBuffer[] = [];

/**
 * Drains a byte stream and decodes it as UTF-8, invalid bytes replaced. Reading stdout
 * and stderr at the same time keeps a child that writes megabytes to either pipe from
 * blocking on a full pipe. Never rejects: a broken pipe keeps what arrived.
 */
async function drain(reader: ReadableStreamBYOBReader): Promise<string> {
  const decoder = new GoUtf8Decoder(); // each invalid byte one U+FFFD, as Go's regexp sees it
  const pieces: string[] = [];
  let chunk = spareChunks.pop() ?? new ArrayBuffer(CHUNK_BYTES);
  /** Whether `chunk` is ours (a pending read holds it, and keeps it if cancelled). */
  let chunkHeld = true;
  try {
    for (;;) {
      chunkHeld = false;
      const { done, value } = await reader.read(new Uint8Array(chunk));
      if (value !== undefined) {
        chunk = value.buffer as ArrayBuffer; // the read hands the buffer back
        chunkHeld = true;
        if (value.byteLength > 0) pieces.push(decoder.decode(value, { stream: true }));
      }
      if (done) break;
    }
  } catch {
    // Cancelled after a timeout, or the pipe broke: keep what arrived.
  }
  if (chunkHeld && spareChunks.length < MAX_KEPT_CHUNKS) spareChunks.push(chunk);
  pieces.push(decoder.decode()); // an incomplete sequence at the end becomes U+FFFD
  return pieces.join("");
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The real {@linkcode CommandRunner} over `Deno.Command`. On timeout the child is killed
 * with SIGKILL and reaped; output is decoded as UTF-8 with invalid bytes replaced, so
 * odd bytes in a rule comment cannot make a read fail.
 */
export const runCommand: CommandRunner = async (command, args, options) => {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { kind: "not-found" };
    // Not executable, refused by Deno's --allow-run, or any other refusal to start it.
    return { kind: "denied", message: describe(error) };
  }

  const stdoutReader = child.stdout.getReader({ mode: "byob" });
  const stderrReader = child.stderr.getReader({ mode: "byob" });
  const stdoutDone = drain(stdoutReader);
  const stderrDone = drain(stderrReader);

  // The deadline covers the whole run: the exit and the pipes closing (a grandchild that
  // inherited them could otherwise keep a finished read waiting).
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited between the timer firing and the kill.
    }
    stdoutReader.cancel().catch(() => {});
    stderrReader.cancel().catch(() => {});
  }, options.timeoutMs);

  let stdout: string;
  let stderr: string;
  let status: Deno.CommandStatus;
  try {
    [stdout, stderr, status] = await Promise.all([stdoutDone, stderrDone, child.status]);
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) return { kind: "timeout" };

  return {
    kind: "exited",
    // Deno reports a child killed by a signal as 128 + the signal number, as a shell does.
    code: status.code,
    stdout,
    stderr,
  };
};
