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
 * The daemon reads megabytes of rules at every check. Each read lands in one small
 * buffer and is copied to the end of one growing buffer, released by transfer when done
 * (its memory goes back at once, not at V8's next full collection), and the whole is
 * decoded once: the text is the only thing a check leaves for the garbage collector,
 * not also its pieces.
 */
async function drain(reader: ReadableStreamBYOBReader): Promise<string> {
  let chunk = new ArrayBuffer(CHUNK_BYTES);
  let all = new ArrayBuffer(CHUNK_BYTES);
  let filled = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(chunk));
      if (value !== undefined) {
        chunk = value.buffer as ArrayBuffer; // the read hands the buffer back
        if (all.byteLength - filled < value.byteLength) {
          all = all.transfer(Math.max(2 * all.byteLength, filled + value.byteLength));
        }
        new Uint8Array(all, filled).set(value);
        filled += value.byteLength;
      }
      if (done) break;
    }
  } catch {
    // Cancelled after a timeout, or the pipe broke: keep what arrived.
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(new Uint8Array(all, 0, filled));
  all.transfer(0);
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
