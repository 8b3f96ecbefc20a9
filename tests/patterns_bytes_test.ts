/**
 * Bytes as Go sees them, checked against Go itself (tests/go/regexp_oracle.go): rule
 * bytes decoded one U+FFFD per invalid byte (Go's `[]rune(string(b))`), allowlist files
 * split into lines as `bufio.Scanner` splits them, and patterns that are not valid UTF-8
 * (or hold a byte-order mark or a NUL) judged as Go's `regexp.Compile` judges them.
 */

import assert from "node:assert/strict";
import {
  askGo,
  askGoDecode,
  askGoLines,
  compare,
  describe,
  type OracleCase,
  startEngine,
} from "./_support/go_oracle.ts";
import { requires } from "./_support/requires.ts";
import { decodeGoUtf8, GoUtf8Decoder } from "../src/patterns/go_utf8.ts";
import { loadAllowlist, MAX_LINE_BYTES, splitPatternLines } from "../src/patterns/allowlist.ts";
import { prng as random } from "./_support/prng.ts";

const bytes = (...parts: (string | number[])[]): Uint8Array => {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === "string") out.push(...new TextEncoder().encode(part));
    else out.push(...part);
  }
  return Uint8Array.from(out);
};

/** Pieces of byte strings: ASCII, valid sequences, and every kind of broken one. */
const PIECES: number[][] = [
  [0x61],
  [0x20],
  [0x2e],
  [0x00],
  [0x0d],
  [0x0a],
  [0x80],
  [0xbf],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xc2],
  [0xc2, 0xa9],
  [0xdf, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xe0, 0xa0, 0x80],
  [0xe0, 0xa0],
  [0xed, 0xa0, 0x80],
  [0xed, 0x9f, 0xbf],
  [0xef, 0xbb, 0xbf],
  [0xef, 0xbf, 0xbd],
  [0xf0, 0x9f, 0x98],
  [0xf0, 0x9f, 0x98, 0x80],
  [0xf0, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80],
  [0xfe],
  [0xff],
];

function randomBytes(next: () => number, pieces: number): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < pieces; i++) out.push(...PIECES[Math.floor(next() * PIECES.length)]);
  return Uint8Array.from(out);
}

const codePoints = (text: string): number[] => [...text].map((c) => c.codePointAt(0)!);

Deno.test({
  name: "rule bytes decode as Go iterates them: one U+FFFD per invalid byte, in any chunking",
  ...requires({ commands: ["go"] }),
  async fn() {
    const next = random(12);
    const samples = Array.from(
      { length: 300 },
      () => randomBytes(next, 1 + Math.floor(next() * 12)),
    );
    const expected = await askGoDecode(samples);
    samples.forEach((sample, i) => {
      assert.deepEqual(codePoints(decodeGoUtf8(sample)), expected[i], `bytes ${sample}`);
      // Streaming: the same text however the bytes arrive.
      const decoder = new GoUtf8Decoder();
      let text = "";
      let at = 0;
      while (at < sample.length) {
        const size = 1 + Math.floor(next() * 4);
        text += decoder.decode(sample.subarray(at, at + size), { stream: true });
        at += size;
      }
      text += decoder.decode();
      assert.deepEqual(codePoints(text), expected[i], `streamed bytes ${sample}`);
    });
  },
});

Deno.test({
  name: "allowlist lines split as Go's bufio.Scanner splits them: CR, BOM, NUL, bad bytes, 64 KiB",
  ...requires({ commands: ["go"] }),
  async fn() {
    const next = random(7);
    const files: Uint8Array[] = [
      bytes("a\r\n\r\n  \nb\n\nc"),
      bytes("x\r\r\n\ry\r"),
      bytes([0xef, 0xbb, 0xbf], "^-A INPUT$\n", [0xef, 0xbb, 0xbf], "x\n"),
      bytes("a", [0], "b\n", [0], "\n"),
      bytes("ok\n", [0xff, 0xfe], "\nfine"),
      bytes("x".repeat(MAX_LINE_BYTES), "\nafter\n"),
      bytes("first\n", "x".repeat(MAX_LINE_BYTES + 1), "\nafter\n"),
      bytes("x".repeat(MAX_LINE_BYTES), "\r\nafter"),
      bytes("x".repeat(MAX_LINE_BYTES + 1)),
      ...Array.from({ length: 60 }, () => randomBytes(next, Math.floor(next() * 30))),
    ];
    const go = await askGoLines(files);
    files.forEach((file, i) => {
      const ours = splitPatternLines(file);
      const goLines = go[i].lines.filter((line) => line.length > 0);
      assert.deepEqual(
        ours.lines.map((l) => [...l.bytes]),
        goLines.map((l) => [...l]),
        `file ${i}`,
      );
      assert.equal(ours.tooLong !== undefined, go[i].error !== "", `file ${i}: ${go[i].error}`);
    });
  },
});

/** Raw-byte patterns: invalid UTF-8 in every place Go's parser reads, BOM and NUL. */
const BYTE_PATTERNS: Uint8Array[] = [
  bytes("^-A INPUT .$"),
  bytes("^-A INPUT ...$"),
  bytes("^-A INPUT .{3}$"),
  bytes("^-A INPUT \\x{FFFD}{3}$"),
  bytes([0xef, 0xbb, 0xbf], "^-A INPUT"),
  bytes([0xef, 0xbb, 0xbf], "-A INPUT"),
  bytes("a", [0], "b"),
  bytes([0]),
  bytes("[", [0], "]"),
  bytes("abc", [0xff]),
  bytes([0xff], "abc"),
  bytes("[a", [0xff], "]"),
  bytes("[", [0xc3], "-", [0xc3, 0xa9], "]"),
  bytes("\\", [0xff]),
  bytes("\\Q", [0xff], "\\E"),
  bytes("\\Qab", [0xf0, 0x9f], "cd"),
  bytes("\\p{", [0xff], "}"),
  bytes("\\p", [0xff]),
  bytes("\\p{L", [0xff]),
  bytes("(?P<", [0xff], ">x)"),
  bytes("(?P<n", [0xff]),
  bytes("(?", [0xff], ")"),
  bytes("(?i", [0xff], ":x)"),
  bytes("x{", [0xff], "}"),
  bytes("[[:", [0xff], ":]]"),
  bytes("a**", [0xff]),
  bytes("(", [0xff]),
  bytes(")", [0xff]),
  bytes("\\x{", [0xff], "}"),
  bytes("\\x", [0xff]),
  bytes([0xed, 0xa0, 0x80]),
  bytes([0xf0, 0x9f, 0x98, 0x80], "+"),
  bytes("(?i)", [0xc3, 0xa9]),
];

const BYTE_RULES: Uint8Array[] = [
  bytes("-A INPUT ", [0xf0, 0x9f, 0x98]),
  bytes("-A INPUT ", [0xf0, 0x9f, 0x98, 0x80]),
  bytes("-A INPUT ", [0xef, 0xbf, 0xbd]),
  bytes("-A INPUT ", [0xff, 0xfe, 0xfd]),
  bytes([0xef, 0xbb, 0xbf], "-A INPUT x"),
  bytes("-A INPUT x"),
  bytes("a", [0], "b"),
  bytes([0xc3, 0x89, 0xc3, 0xa9]),
  bytes([0xed, 0xa0, 0x80]),
  bytes([0xf0, 0x9f, 0x98, 0x80, 0xf0, 0x9f, 0x98, 0x80]),
  bytes([0xc0, 0xaf, 0xe0, 0x80, 0xaf]),
];

Deno.test({
  name:
    "patterns and rules as raw bytes: Go's verdict, Go's error (invalid UTF-8 where Go reads it)",
  ...requires({ commands: ["go"] }),
  async fn() {
    const next = random(99);
    const rules = [
      ...BYTE_RULES,
      ...Array.from({ length: 20 }, () => randomBytes(next, 1 + Math.floor(next() * 8))),
    ];
    const label = (b: Uint8Array) => decodeGoUtf8(b);
    const cases: OracleCase[] = BYTE_PATTERNS.map((pattern) => ({
      pattern: label(pattern),
      patternBytes: pattern,
      inputs: rules.map(label),
      inputBytes: rules,
    }));
    const verdicts = await askGo(cases);
    // The example: Go sees three U+FFFD for a truncated 4-byte sequence.
    assert.deepEqual(verdicts[0].matches.slice(0, 2), [false, true]);
    assert.deepEqual(verdicts[1].matches.slice(0, 2), [true, false]);
    const engine = await startEngine();
    try {
      const outcomes = await engine.run(cases);
      const { discrepancies } = compare(cases, verdicts, outcomes);
      assert.equal(discrepancies.length, 0, describe(discrepancies));
    } finally {
      engine.close();
    }
  },
});

Deno.test({
  name:
    "an allowlist file keeps every line Go keeps: a BOM is a literal, NUL too, bad bytes spoil one line",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "aim-bytes-" });
    try {
      await Deno.writeFile(
        `${dir}/filter`,
        bytes(
          [0xef, 0xbb, 0xbf],
          "-A INPUT -j ACCEPT$\r\n",
          "^-A FORWARD -j ACCEPT$\r\n",
          "^-A OUTPUT ",
          [0xff],
          "$\n",
          "^-A NUL ",
          [0],
          "$\n",
        ),
      );
      const allowlist = await loadAllowlist(dir);
      const entries = allowlist.patterns.get("filter") ?? [];
      assert.deepEqual(entries.map((e) => e.line), [1, 2, 4]);
      assert.equal(allowlist.errors.length, 1);
      assert.equal(allowlist.errors[0].line, 3);
      assert.match(allowlist.errors[0].message, /invalid UTF-8/);
      // The first pattern begins with U+FEFF, as in Go: a rule must hold it to match.
      assert.equal(entries[0].regexp.test("-A INPUT -j ACCEPT"), false);
      assert.equal(entries[0].regexp.test("x\ufeff-A INPUT -j ACCEPT"), true);
      assert.equal(entries[1].regexp.test("-A FORWARD -j ACCEPT"), true);
      assert.equal(entries[2].regexp.test("-A NUL \u0000"), true);
      // A line Go's scanner refuses stops the file there, as in Go.
      await Deno.writeFile(
        `${dir}/nat`,
        bytes("^a$\n", "x".repeat(MAX_LINE_BYTES + 1), "\n^b$\n"),
      );
      const long = await loadAllowlist(dir);
      assert.deepEqual((long.patterns.get("nat") ?? []).map((e) => e.regexp.source), ["^a$"]);
      const stop = long.errors.find((e) => e.file.endsWith("/nat"));
      assert.equal(stop?.line, 2);
      assert.match(stop?.message ?? "", /where Go's line scanner stops/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
