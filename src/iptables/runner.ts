/**
 * Runs an external command (no shell) and collects its output, with a hard timeout.
 * The one I/O edge through which iptables is read, so tests can point it at a network
 * namespace (`ip netns exec`) or at other real commands.
 */

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

/**
 * Drains a byte stream and decodes it as UTF-8, invalid bytes replaced. Reading stdout
 * and stderr at the same time keeps a child that writes megabytes to either pipe from
 * blocking on a full pipe. Never rejects: a broken pipe keeps what arrived.
 *
 * The daemon reads megabytes of rules at every check. They are read into one buffer,
 * grown and finally released by transfer (so its memory goes back at once, not at V8's
 * next full collection), and decoded once: the text is the only thing a check leaves
 * for the garbage collector, not also its pieces.
 */
async function drain(reader: ReadableStreamBYOBReader): Promise<string> {
  let buffer = new ArrayBuffer(CHUNK_BYTES);
  let filled = 0;
  /** Whether `buffer` is ours (a pending read holds it, and keeps it if cancelled). */
  let held = true;
  try {
    for (;;) {
      if (buffer.byteLength - filled < CHUNK_BYTES) buffer = buffer.transfer(2 * buffer.byteLength);
      held = false;
      const { done, value } = await reader.read(new Uint8Array(buffer, filled, CHUNK_BYTES));
      if (value !== undefined) {
        buffer = value.buffer as ArrayBuffer; // the read hands the buffer back
        held = true;
        filled += value.byteLength;
      }
      if (done) break;
    }
  } catch {
    // Cancelled after a timeout, or the pipe broke: keep what arrived.
  }
  if (!held) return ""; // a read still holds the buffer and what it held
  const text = new TextDecoder("utf-8", { fatal: false }).decode(
    new Uint8Array(buffer, 0, filled),
  );
  buffer.transfer(0);
  return text;
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
