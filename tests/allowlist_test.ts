import assert from "node:assert/strict";
import { loadAllowlist, patternLines } from "../src/patterns/allowlist.ts";

async function withDir(
  files: Record<string, string | Uint8Array>,
  fn: (dir: string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "aim-allowlist-" });
  try {
    for (const [name, content] of Object.entries(files)) {
      if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
      else await Deno.writeFile(`${dir}/${name}`, content);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("lines: only truly empty lines are skipped; a trailing \\r goes; a line of spaces is a pattern", () => {
  assert.deepEqual(patternLines("a\r\n\r\n  \nb\n\nc"), [
    { line: 1, pattern: "a" },
    { line: 3, pattern: "  " },
    { line: 4, pattern: "b" },
    { line: 6, pattern: "c" },
  ]);
  assert.deepEqual(patternLines("x\r\r\n"), [{ line: 1, pattern: "x\r" }]);
});

Deno.test("the known files are read; other names, ..data and symlinks are ignored", async () => {
  await withDir({
    global: "^-P \\w+ ACCEPT$\n",
    filter: "^-A INPUT -i lo -j ACCEPT$\r\n",
    "filter.bak": "ignored\n",
    README: "ignored\n",
  }, async (dir) => {
    await Deno.mkdir(`${dir}/..data`);
    const allowlist = await loadAllowlist(dir);
    assert.equal(allowlist.readable, true);
    assert.deepEqual(allowlist.errors, []);
    assert.deepEqual([...allowlist.patterns.keys()].sort(), [
      "filter",
      "global",
      "mangle",
      "nat",
      "nftables",
      "raw",
      "security",
    ]);
    assert.equal(allowlist.patterns.get("filter")?.[0].regexp.source, "^-A INPUT -i lo -j ACCEPT$");
    assert.equal(allowlist.patterns.get("nat")?.length, 0);
  });
});

Deno.test("invalid patterns are reported with file, line and Go's reason, and the rest still load", async () => {
  await withDir({ nat: "^ok$\n(unclosed\n^also ok$\na(?=b)\n" }, async (dir) => {
    const allowlist = await loadAllowlist(dir);
    assert.equal(allowlist.patterns.get("nat")?.length, 2);
    assert.deepEqual(allowlist.errors, [
      {
        kind: "pattern",
        file: `${dir}/nat`,
        line: 2,
        message: "error parsing regexp: missing closing ): `(unclosed`",
      },
      {
        kind: "pattern",
        file: `${dir}/nat`,
        line: 4,
        message: "error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
      },
    ]);
  });
});

Deno.test("a missing directory, a file in its place, a binary line and a 10 MB file are clear errors", async () => {
  const missing = await loadAllowlist("/nonexistent/aim-allowlist");
  assert.equal(missing.readable, false);
  assert.match(missing.errors[0].message, /does not exist/);

  await withDir({ filter: "x\n" }, async (dir) => {
    const notDir = await loadAllowlist(`${dir}/filter`);
    assert.equal(notDir.readable, false);
    assert.match(notDir.errors[0].message, /not a directory/);
  });

  const binary = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff, 0xfe, 10]);
  const big = "^-A KUBE-SVC-[A-Z0-9]{16} .*$\n".repeat(400_000);
  await withDir({ filter: binary, nat: big, global: "^-P \\w+ ACCEPT$\n" }, async (dir) => {
    const allowlist = await loadAllowlist(dir);
    assert.equal(allowlist.readable, true);
    const messages = allowlist.errors.map((e) => `${e.file.slice(dir.length)} ${e.message}`);
    assert.equal(messages.length, 2);
    assert.match(messages[0], /^\/nat is larger than 1 MiB; allowlist files are limited to 1 MiB/);
    // As in Go, bytes that are not UTF-8 make that line's pattern invalid, not the file.
    assert.match(messages[1], /^\/filter error parsing regexp: invalid UTF-8: `\ufffd\ufffd`$/);
    assert.equal(allowlist.patterns.get("global")?.length, 1);
  });
});

Deno.test("the version changes when any pattern changes, and only then", async () => {
  await withDir({ filter: "a\n" }, async (dir) => {
    const first = await loadAllowlist(dir);
    const again = await loadAllowlist(dir);
    assert.equal(first.version, again.version);
    await Deno.writeTextFile(`${dir}/filter`, "b\n");
    const changed = await loadAllowlist(dir);
    assert.notEqual(first.version, changed.version);
  });
});
