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

/**
 * Drains a stream into one buffer. Reading stdout and stderr at the same time keeps a
 * child that writes megabytes to either pipe from blocking on a full pipe.
 */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.length;
    }
  } catch {
    // Cancelled after a timeout, or the pipe broke: keep what arrived.
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
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

  const stdoutReader = child.stdout.getReader();
  const stderrReader = child.stderr.getReader();
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

  let stdoutBytes: Uint8Array;
  let stderrBytes: Uint8Array;
  let status: Deno.CommandStatus;
  try {
    [stdoutBytes, stderrBytes, status] = await Promise.all([stdoutDone, stderrDone, child.status]);
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) return { kind: "timeout" };

  const decoder = new TextDecoder("utf-8", { fatal: false });
  return {
    kind: "exited",
    // Deno reports a child killed by a signal as 128 + the signal number, as a shell does.
    code: status.code,
    stdout: decoder.decode(stdoutBytes),
    stderr: decoder.decode(stderrBytes),
  };
};
