/**
 * Reading files someone else controls: only regular files, the limit counted in bytes
 * read, and no wait when a file is swapped for a FIFO between the check and the open.
 */

import assert from "node:assert/strict";
import { readBoundedFile } from "../src/bounded_file.ts";
import { requires } from "./_support/requires.ts";

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aim-bounded-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a regular file is read; more than the limit, missing and other kinds are refused", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/small`, "abc");
    const read = await readBoundedFile(`${dir}/small`, { maxBytes: 3 });
    assert.equal(read.kind, "bytes");
    if (read.kind === "bytes") assert.equal(new TextDecoder().decode(read.bytes), "abc");
    await Deno.writeTextFile(`${dir}/big`, "abcd");
    assert.deepEqual(await readBoundedFile(`${dir}/big`, { maxBytes: 3 }), { kind: "too-big" });
    assert.deepEqual(await readBoundedFile(`${dir}/none`, { maxBytes: 3 }), { kind: "missing" });
    assert.deepEqual(await readBoundedFile(dir, { maxBytes: 3 }), {
      kind: "refused",
      reason: "is a directory, not a regular file, so it was not read",
    });
    await Deno.symlink("/dev/zero", `${dir}/zero`);
    assert.deepEqual(await readBoundedFile(`${dir}/zero`, { maxBytes: 3 }), {
      kind: "refused",
      reason: "is a character device, not a regular file, so it was not read",
    });
  }));

Deno.test({
  name: "a file swapped to a FIFO and back while it is read never makes a read wait",
  ...requires({ commands: ["mkfifo", "ln", "sh"] }),
  // An open that a swap left waiting for a writer is released at the end of the test.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/regular`, "^-A INPUT -j ACCEPT$\n");
      const made = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
      assert.ok(made.success);
      await Deno.symlink("regular", `${dir}/link`);
      const swapper = new Deno.Command("sh", {
        args: ["-c", 'while :; do ln -sfn fifo "$0/link"; ln -sfn regular "$0/link"; done', dir],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const outcomes = new Map<string, number>();
      try {
        for (let i = 0; i < 3000; i++) {
          const started = performance.now();
          const read = await readBoundedFile(`${dir}/link`, {
            maxBytes: 1024,
            openTimeoutMs: 300,
          });
          const took = performance.now() - started;
          assert.ok(took < 1_500, `read ${i} took ${took} ms`);
          const key = read.kind === "refused" ? read.reason.split(/[,;]/)[0] : read.kind;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          // Once an open waits, the path is refused at once; a few more show it.
          const refusedAtOnce =
            "could not be opened: an earlier open is still waiting (it turned into a FIFO)";
          if ((outcomes.get(refusedAtOnce) ?? 0) > 20) {
            break;
          }
        }
      } finally {
        swapper.kill("SIGKILL");
        await swapper.status;
        // Release an open still waiting on the FIFO: a writer appears and goes. (Only when
        // one waits: with no reader, opening for writing would wait in turn.)
        if ([...outcomes.keys()].some((key) => key.startsWith("could not be opened"))) {
          const writer = await Deno.open(`${dir}/fifo`, { write: true });
          writer.close();
        }
      }
      for (const key of outcomes.keys()) {
        assert.ok(
          key === "bytes" || key.startsWith("is a named pipe") ||
            key.startsWith("could not be opened"),
          `unexpected outcome ${key}`,
        );
      }
    }),
});
