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
 * Whether a command that prints 2.8 MB (over forty pipes full) was done with its work before
 * this thread, blocked for a second right after starting it, could read anything. It
 * stamps a file when done, before it exits (which waits until its output is read).
 */
async function doneWhileBlocked(bufferInChild: boolean): Promise<boolean> {
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
    const done = (await Deno.stat(stamp)).mtime!.getTime();
    return done < unblocked;
  } finally {
    await Deno.remove(stamp);
  }
}

Deno.test({
  name: "runCommand bufferInChild: the command does its work while this thread is blocked",
  ...withStdbuf,
  fn: async () => {
    assert.equal(await doneWhileBlocked(false), false, "plain: it waits at a full pipe");
    assert.equal(await doneWhileBlocked(true), true, "buffered: it ran to its end");
  },
});

Deno.test({
  name: "runCommand bufferInChild: same outcome as plain, for output, exit codes and failures",
  ...withStdbuf,
  fn: async () => {
    const cases: [string, string[]][] = [
      ["sh", ["-c", "printf 'a\\nb'; printf oops >&2; exit 3"]],
      // stdbuf's own failure codes, from the command itself: not mistaken for stdbuf's.
      ["sh", ["-c", "exit 127"]],
      ["sh", ["-c", "exit 126"]],
      ["sh", ["-c", "printf partial; exit 125"]],
      ["aim-no-such-command", []],
      ["/etc/hostname", []], // exists, not executable
      ["sh", ["-c", "kill -TERM $$"]],
    ];
    for (const [command, args] of cases) {
      const plain = await runCommand(command, args, { timeoutMs: TIMEOUT_MS });
      const buffered = await runCommand(command, args, {
        timeoutMs: TIMEOUT_MS,
        bufferInChild: true,
      });
      assert.deepEqual(buffered, plain, `${command} ${args.join(" ")}`);
    }
  },
});

Deno.test({
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
