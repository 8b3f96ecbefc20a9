import assert from "node:assert/strict";
import { checkRules, exitCodeFor, FamilyCaches, type FamilyInput } from "../src/check.ts";
import type { Allowlist, PatternEntry } from "../src/patterns/allowlist.ts";
import { compileGoRegexp } from "../src/patterns/regexp.ts";
import type { Family, FamilyRead } from "../src/iptables/types.ts";

function entries(file: string, patterns: string[]): PatternEntry[] {
  return patterns.map((pattern, i) => {
    const result = compileGoRegexp(pattern);
    if (!result.ok) throw new Error(result.message);
    return { file, line: i + 1, regexp: result.regexp };
  });
}

function allowlist(files: Record<string, string[]>, extra: Partial<Allowlist> = {}): Allowlist {
  const patterns = new Map(
    Object.entries(files).map(([name, list]) => [name, entries(name, list)]),
  );
  return {
    dir: "/allow",
    patterns,
    errors: [],
    readable: true,
    version: JSON.stringify(files),
    ...extra,
  };
}

function read(family: Family, tables: Record<string, string[]>, source = "test"): FamilyRead {
  return {
    family,
    errors: [],
    sources: [{
      family,
      source,
      tables: Object.entries(tables).map(([table, lines]) => ({
        table,
        rules: lines.map((text) => ({ chain: text.split(" ")[1], text })),
      })),
    }],
  };
}

const FILTER = ["-P INPUT ACCEPT", "-A INPUT -i lo -j ACCEPT", "-A INPUT -s 1.2.3.4/32 -j DROP"];

Deno.test("a rule is expected when a pattern of its table or of global matches it", () => {
  const input: FamilyInput = {
    family: "ipv4",
    allowlist: allowlist({ global: ["^-P \\w+ ACCEPT$"], filter: ["-i lo"], nat: ["DROP"] }),
    read: read("ipv4", { filter: FILTER }),
  };
  const report = checkRules([input], { node: "n1" });
  assert.equal(report.verdict, "true");
  assert.equal(report.node, "n1");
  assert.deepEqual(report.families[0].tables, [{
    table: "filter",
    rules: 3,
    unexpected: [{ chain: "INPUT", rule: "-A INPUT -s 1.2.3.4/32 -j DROP" }],
  }]);
  assert.equal(exitCodeFor(report), 1);
});

Deno.test("everything expected and everything read: false, exit 0", () => {
  const report = checkRules([{
    family: "ipv4",
    allowlist: allowlist({ global: [".*"] }),
    read: read("ipv4", { filter: FILTER, nat: ["-P PREROUTING ACCEPT"] }),
  }], { node: null });
  assert.equal(report.verdict, "false");
  assert.equal(exitCodeFor(report), 0);
});

Deno.test("fail closed: a read error without unexpected rules is unknown, never false", () => {
  const failed: FamilyRead = {
    family: "ipv6",
    sources: [],
    errors: [{ kind: "iptables", family: "ipv6", source: "ip6tables-nft-save", message: "boom" }],
  };
  const clean: FamilyInput = {
    family: "ipv4",
    allowlist: allowlist({ global: [".*"] }),
    read: read("ipv4", { filter: FILTER }),
  };
  const unknown = checkRules([clean, { family: "ipv6", allowlist: allowlist({}), read: failed }], {
    node: null,
  });
  assert.equal(unknown.verdict, "unknown");
  assert.equal(exitCodeFor(unknown), 2);
  assert.equal(unknown.errors[0].message, "boom");

  // Unexpected rules found elsewhere still make "true" certain.
  const dirty = { ...clean, allowlist: allowlist({ global: ["-P"] }) };
  assert.equal(
    checkRules([dirty, { family: "ipv6", allowlist: allowlist({}), read: failed }], { node: null })
      .verdict,
    "true",
  );
});

Deno.test("an unreadable allowlist directory means no verdict for that family", () => {
  const report = checkRules([{
    family: "ipv4",
    allowlist: allowlist({}, {
      readable: false,
      errors: [{ kind: "allowlist", file: "/nope", message: "does not exist" }],
    }),
    read: read("ipv4", { filter: FILTER }),
  }], { node: null });
  assert.equal(report.verdict, "unknown");
  assert.deepEqual(report.families, []);
});

Deno.test("an unreadable allowlist still lets the lines no pattern may allow make it true", () => {
  const lines = [
    { chain: "INPUT", text: "-A INPUT -j ACCEPT" },
    { chain: "INPUT", text: '-A INPUT -m comment --comment "x', unallowable: "split" },
  ];
  const report = checkRules([{
    family: "ipv4",
    allowlist: allowlist({}, {
      readable: false,
      errors: [{ kind: "allowlist", file: "/nope", message: "does not exist" }],
    }),
    read: {
      family: "ipv4",
      errors: [],
      sources: [{ family: "ipv4", source: "test", tables: [{ table: "filter", rules: lines }] }],
    },
  }], { node: null });
  assert.equal(report.verdict, "true");
  assert.deepEqual(report.families, [{
    family: "ipv4",
    source: "test",
    tables: [{
      table: "filter",
      rules: 1,
      unexpected: [{ chain: "INPUT", rule: lines[1].text, reason: "split" }],
    }],
  }]);
});

Deno.test("invalid patterns are errors but do not by themselves block a verdict", () => {
  const report = checkRules([{
    family: "ipv4",
    allowlist: allowlist({ global: [".*"] }, {
      errors: [{ kind: "pattern", file: "/allow/nat", line: 3, message: "bad" }],
    }),
    read: read("ipv4", { filter: FILTER }),
  }], { node: null });
  assert.equal(report.verdict, "false");
  assert.equal(report.errors.length, 1);
});

Deno.test("the five iptables tables come in a fixed order, any other table after them", () => {
  const report = checkRules([{
    family: "ipv4",
    allowlist: allowlist({}),
    read: read("ipv4", { security: ["-P INPUT ACCEPT"], broute: ["-P X ACCEPT"], nat: [] }),
  }], { node: null });
  assert.deepEqual(report.families[0].tables.map((t) => t.table), ["nat", "security", "broute"]);
  assert.equal(report.verdict, "true");
});

Deno.test("a line no pattern may allow is unexpected whatever the patterns, cached or not", () => {
  const cache = new FamilyCaches();
  const lines = ["-A INPUT -i lo -j ACCEPT", '-A INPUT -m comment --comment "x', 'y" -j ACCEPT'];
  const input = (unallowable: boolean): FamilyInput => ({
    family: "ipv4",
    allowlist: allowlist({ global: [".*"] }),
    read: {
      family: "ipv4",
      errors: [],
      sources: [{
        family: "ipv4",
        source: "test",
        tables: [{
          table: "filter",
          rules: lines.map((text, i) => ({
            chain: "INPUT",
            text,
            ...(unallowable && i > 0 ? { unallowable: "part of one rule" } : {}),
          })),
        }],
      }],
    },
  });
  assert.equal(checkRules([input(false)], { node: null, cache }).verdict, "false");
  for (const options of [{ node: null, cache }, { node: null }]) {
    const report = checkRules([input(true)], options);
    assert.equal(report.verdict, "true");
    assert.deepEqual(report.families[0].tables[0].unexpected, [
      { chain: "INPUT", rule: lines[1], reason: "part of one rule" },
      { chain: "INPUT", rule: lines[2], reason: "part of one rule" },
    ]);
  }
});

Deno.test("cached verdicts give the same answer and are dropped when the patterns change", () => {
  const cache = new FamilyCaches();
  const input: FamilyInput = {
    family: "ipv4",
    allowlist: allowlist({ filter: ["-i lo"] }),
    read: read("ipv4", { filter: FILTER }),
  };
  const first = checkRules([input], { node: null, cache });
  const second = checkRules([input], { node: null, cache });
  assert.deepEqual(second, first);
  const widened = { ...input, allowlist: allowlist({ filter: [".*"] }) };
  assert.equal(checkRules([widened], { node: null, cache }).verdict, "false");
});

Deno.test("-v 3 hears which pattern allowed each rule", () => {
  const seen: string[] = [];
  checkRules([{
    family: "ipv4",
    allowlist: allowlist({ global: ["ACCEPT$"], filter: ["^-A INPUT"] }),
    read: read("ipv4", { filter: FILTER }),
  }], {
    node: null,
    onMatch: ({ rule, pattern }) => seen.push(`${rule.text} <- ${pattern.file}:${pattern.line}`),
  });
  assert.deepEqual(seen, [
    "-P INPUT ACCEPT <- global:1",
    "-A INPUT -i lo -j ACCEPT <- filter:1",
    "-A INPUT -s 1.2.3.4/32 -j DROP <- filter:1",
  ]);
});

Deno.test("cached verdicts stay right when rules are inserted, removed and reordered", () => {
  const cache = new FamilyCaches();
  const patterns = allowlist({ global: ["ACCEPT$"] });
  const check = (lines: string[]) =>
    checkRules([{ family: "ipv4", allowlist: patterns, read: read("ipv4", { filter: lines }) }], {
      node: null,
      cache,
    }).families[0].tables[0].unexpected.map((u) => u.rule);
  const a = "-A INPUT -i lo -j ACCEPT";
  const b = "-A INPUT -s 1.2.3.4/32 -j DROP";
  const c = "-A INPUT -p tcp -j ACCEPT";
  const d = "-A FORWARD -j REJECT";
  const sequence: string[][] = [[a, b], [a, c, b], [b, a], [d, a, b, c], [c], [], [b, b, d], [a]];
  for (const lines of sequence) {
    const uncached = checkRules([{
      family: "ipv4",
      allowlist: patterns,
      read: read("ipv4", { filter: lines }),
    }], { node: null }).families[0].tables[0].unexpected.map((u) => u.rule);
    assert.deepEqual(check(lines), uncached, lines.join(" | "));
  }
});
