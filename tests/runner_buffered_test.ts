/**
 * `runCommand` with `bufferInChild` (the first check, while the Kubernetes client loads):
 * the command runs to its end while this thread cannot read, and what it says is what it
 * would have said without stdbuf, including where stdbuf cannot run.
 */
import assert from "node:assert/strict";
import { runCommand } from "../src/iptables/runner.ts";
import { requires } from "./_support/requires.ts";

const TIMEOUT_MS = 20_000;
const withStdbuf = requires({ commands: ["stdbuf", "sh", "awk"] });

/** Blocks this thread, as loading the client does. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* busy */ }
}

/**
 * How long before this thread could read a command that prints 2.8 MB (over forty pipes
 * full) was done with its work, this thread being blocked for a second right after
 * starting it. The command stamps a file when done, before it exits (which waits until
 * its output is read).
 */
async function doneBeforeUnblockedMs(bufferInChild: boolean): Promise<number> {
  const stamp = await Deno.makeTempFile();
  try {
    let taken = 0;
    const lines = 100_000;
    const program = `BEGIN { for (i = 0; i < ${lines}; i++) print i, "is a line of the dump"; ` +
      `print "" > "${stamp}"; close("${stamp}") }`;
    const running = runCommand("awk", [program], {
      timeoutMs: TIMEOUT_MS,
      bufferInChild,
      onStdout: (text) => taken += text.length,
    });
    blockFor(1_000);
    const unblocked = Date.now();
    const outcome = await running;
    assert.equal(outcome.kind, "exited");
    assert.equal(taken, 2_788_890, "every line reached the taker");
    return unblocked - (await Deno.stat(stamp)).mtime!.getTime();
  } finally {
    await Deno.remove(stamp);
  }
}

Deno.test({
  name: "runCommand bufferInChild: the command does its work while this thread is blocked",
  ...withStdbuf,
  fn: async () => {
    // File times come from a coarse clock: a margin far above its tick, far below 1 s.
    assert.ok(await doneBeforeUnblockedMs(false) < 300, "plain: it waits at a full pipe");
    assert.ok(await doneBeforeUnblockedMs(true) > 300, "buffered: it ran to its end");
  },
});

/** A run with what reached the taker. */
async function run(
  command: string,
  args: string[],
  options: {
    bufferInChild?: boolean;
    timeoutMs?: number;
    maxOutputBytes?: number;
    abortMs?: number;
  },
) {
  let taken = "";
  const signal = options.abortMs === undefined ? undefined : AbortSignal.timeout(options.abortMs);
  const outcome = await runCommand(command, args, {
    timeoutMs: options.timeoutMs ?? TIMEOUT_MS,
    maxOutputBytes: options.maxOutputBytes,
    bufferInChild: options.bufferInChild,
    signal,
    onStdout: (text) => taken += text,
  });
  return { outcome, taken };
}

Deno.test({
  name: "runCommand bufferInChild: same outcome as plain, for output, exit codes and failures",
  ...withStdbuf,
  fn: async () => {
    const cases: [string, string[]][] = [
      ["sh", ["-c", "printf 'a\\nb'; printf oops >&2; exit 3"]],
      // stdbuf's own failure codes, from the command itself: not mistaken for stdbuf's,
      // and output printed before them is taken once.
      ["sh", ["-c", "exit 127"]],
      ["sh", ["-c", "exit 126"]],
      ["sh", ["-c", "printf partial; exit 125"]],
      ["sh", ["-c", "printf partial; exit 127"]],
      ["aim-no-such-command", []],
      ["/etc/hostname", []], // exists, not executable
      ["sh", ["-c", "kill -TERM $$"]],
      // More than the child's buffer: it fills, then waits at the pipe, all of it arrives.
      ["seq", ["1", "2000000"]],
    ];
    for (const [command, args] of cases) {
      const plain = await run(command, args, {});
      const buffered = await run(command, args, { bufferInChild: true });
      assert.deepEqual(buffered, plain, `${command} ${args.join(" ")}`);
    }
    // The bounds hold the same way: time, output size, shutdown.
    const bounded: [string, string[], Parameters<typeof run>[2], string][] = [
      ["sh", ["-c", "seq 1 1000; sleep 30"], { timeoutMs: 500 }, "timeout"],
      ["seq", ["1", "2000000"], { maxOutputBytes: 100_000 }, "too-large"],
      ["sleep", ["30"], { abortMs: 300 }, "aborted"],
    ];
    for (const [command, args, options, kind] of bounded) {
      for (const bufferInChild of [false, true]) {
        const started = performance.now();
        const { outcome } = await run(command, args, { ...options, bufferInChild });
        assert.equal(outcome.kind, kind, `${command} ${args.join(" ")} ${bufferInChild}`);
        assert.ok(performance.now() - started < 10_000, "ended by its bound, not by itself");
      }
    }
  },
});

Deno.test({
  name: "runCommand bufferInChild: a command run twice still ends within the time it was given",
  ...withStdbuf,
  fn: async () => {
    // Exit 127 with nothing printed looks like stdbuf not finding the command: it is run
    // again, plain, with what is left of its 1.5 s.
    const started = performance.now();
    const { outcome } = await run("sh", ["-c", "sleep 1; exit 127"], {
      bufferInChild: true,
      timeoutMs: 1_500,
    });
    const tookMs = performance.now() - started;
    assert.equal(outcome.kind, "timeout");
    assert.ok(tookMs < 1_500 + 500, `took ${tookMs.toFixed(0)} ms`);
  },
});

Deno.test({
  // Last in this file: a stdbuf that cannot be found is remembered for the process.
  name: "runCommand bufferInChild: without stdbuf on PATH the command runs as it is",
  ...requires({ commands: ["sh", "seq"] }),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const path = Deno.env.get("PATH");
    try {
      // A PATH with sh and seq only: stdbuf is not found.
      for (const tool of ["sh", "seq"]) {
        const found = new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).outputSync();
        await Deno.symlink(new TextDecoder().decode(found.stdout).trim(), `${dir}/${tool}`);
      }
      Deno.env.set("PATH", dir);
      let text = "";
      const outcome = await runCommand("seq", ["3"], {
        timeoutMs: TIMEOUT_MS,
        bufferInChild: true,
        onStdout: (piece) => text += piece,
      });
      assert.equal(outcome.kind, "exited");
      assert.equal(text, "1\n2\n3\n");
      const missing = await runCommand("aim-no-such-command", [], {
        timeoutMs: TIMEOUT_MS,
        bufferInChild: true,
      });
      assert.equal(missing.kind, "not-found");
    } finally {
      if (path === undefined) Deno.env.delete("PATH");
      else Deno.env.set("PATH", path);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
