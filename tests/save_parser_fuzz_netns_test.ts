/**
 * Random comment text put into real iptables (nf_tables and legacy), each hostile rule
 * followed by a plain one, then the dump read and parsed as a check does: no line is lost
 * (ours are exactly the lines `iptables -S` prints, which the Go original matches), no
 * table is forged, every plain rule is seen and can be allowlisted, and every line of a
 * rule printed over several lines cannot. The seed is in every failure message.
 */
import assert from "node:assert/strict";
import { readFamily } from "../src/iptables/read.ts";
import type { Family } from "../src/iptables/types.ts";
import { type Backend, type Netns, netnsRequires, withNetns } from "./_support/netns.ts";
import { prng as random } from "./_support/prng.ts";

const RULES_PER_RUN = 40;
/** iptables keeps at most 255 bytes of a comment. */
const MAX_COMMENT_BYTES = 255;

/** Pieces that matter to a parser, weighted toward the dangerous ones. */
const PIECES = [
  "\n",
  "\n",
  "\n",
  '"',
  '"',
  "\\",
  "\\",
  "'",
  " ",
  " ",
  "\r",
  "\t",
  "#",
  "*",
  ":",
  "-A ",
  "-A INPUT -j ACCEPT",
  "COMMIT",
  "\nCOMMIT\n",
  "*raw",
  "*filter",
  ":INPUT ACCEPT [0:0]",
  "[0:0] ",
  "[12:34]",
  "x",
  "y",
  "é",
  "\u2028",
  "\u202e",
  "\u0001",
  "\u001b[2J",
  "\u007f",
  "-",
  "!",
];

function comment(next: () => number): string {
  const encoder = new TextEncoder();
  let text = "";
  const pieces = 1 + Math.floor(next() * 30);
  for (let i = 0; i < pieces; i++) {
    const piece = PIECES[Math.floor(next() * PIECES.length)];
    if (encoder.encode(text + piece).length > MAX_COMMENT_BYTES) break;
    text += piece;
  }
  return text === "" ? "x" : text;
}

function tool(family: Family, backend: Backend): string {
  return `${family === "ipv4" ? "iptables" : "ip6tables"}-${backend}`;
}

function plainRule(family: Family, i: number): string[] {
  return family === "ipv4"
    ? ["-A", "INPUT", "-s", `10.9.${Math.floor(i / 250)}.${i % 250 + 1}/32`, "-j", "DROP"]
    : ["-A", "INPUT", "-s", `2001:db8::${(i + 1).toString(16)}/128`, "-j", "DROP"];
}

async function fuzzOnce(ns: Netns, family: Family, backend: Backend, seed: number) {
  const next = random(seed);
  const iptables = tool(family, backend);
  const comments: string[] = [];
  for (let i = 0; i < RULES_PER_RUN; i++) {
    const text = comment(next);
    comments.push(text);
    await ns.exec(iptables, ["-w", "30", "-A", "INPUT", "-m", "comment", "--comment", text]);
    await ns.exec(iptables, ["-w", "30", ...plainRule(family, i)]);
  }
  const context = `seed ${seed}, ${backend} ${family}, comments ${JSON.stringify(comments)}`;

  const shown = await ns.exec(iptables, ["-w", "30", "-t", "filter", "-S"]);
  // go-iptables splits on "\n" and rewrites a line starting with counters.
  const goLines = shown.split("\n").map((line) => {
    const counters = /^\[([0-9]+):([0-9]+)\] /.exec(line);
    return counters === null
      ? line
      : `${line.slice(counters[0].length)} -c ${counters[1]} ${counters[2]}`;
  });
  if (goLines.at(-1) === "") goLines.pop();

  const read = await readFamily(family, { timeoutMs: 60_000, run: ns.run });
  assert.deepEqual(read.errors, [], context);
  const source = read.sources.find((s) => s.source.includes(`-${backend}-save`));
  assert.ok(source !== undefined, context);
  assert.deepEqual(source.tables.map((table) => table.table), ["filter"], context);
  const [filter] = source.tables;
  const ours = filter.rules.map((rule) => rule.text).sort();
  const theirs = [...goLines].sort();
  assert.deepEqual(
    {
      onlyOurs: ours.filter((l) => !theirs.includes(l)),
      onlyGo: theirs.filter((l) => !ours.includes(l)),
    },
    { onlyOurs: [], onlyGo: [] },
    `no line lost or added; ${context}`,
  );
  assert.deepEqual(ours, theirs, `no line lost or added; ${context}`);
  const unallowable = filter.rules.filter((rule) => rule.unallowable !== undefined).length;
  const multiLineLines = comments
    .filter((text) => text.includes("\n"))
    .reduce((sum, text) => sum + text.split("\n").length, 0);
  assert.equal(unallowable, multiLineLines, context);
  for (let i = 0; i < RULES_PER_RUN; i++) {
    const [, , , address] = plainRule(family, i);
    const line = `-A INPUT -s ${address} -j DROP`;
    const rule = filter.rules.find((r) => r.text === line);
    assert.ok(rule !== undefined && rule.unallowable === undefined, `${line}; ${context}`);
  }
}

for (const backend of ["nft", "legacy"] as const) {
  Deno.test({
    name: `random comment text in real iptables (${backend}): no line lost, none forged`,
    ...netnsRequires({ backends: [backend], families: ["ipv4", "ipv6"] }),
    fn: async () => {
      const seed = Number(Deno.env.get("AIM_FUZZ_SEED") ?? Date.now() % 1_000_000_007);
      for (const [i, family] of (["ipv4", "ipv6"] as const).entries()) {
        await withNetns((ns) => fuzzOnce(ns, family, backend, seed + i));
      }
    },
  });
}
