/**
 * The nft view's failures (src/nft/read.ts), with command outcomes that cannot be made
 * to happen here on demand (a kernel without nf_tables, a hang, output nft would not
 * print): those a node user could cause become lines (so the verdict can only be
 * "true"), those no rule can cause are errors that leave the check undecided.
 */
import assert from "node:assert/strict";
import { checkRules } from "../src/check.ts";
import type { CommandOutcome, CommandRunner } from "../src/iptables/runner.ts";
import { listChains, type NftRead, readNftView } from "../src/nft/read.ts";
import type { Allowlist } from "../src/patterns/allowlist.ts";

const CHAIN = (family: string, table: string, name: string, hook?: string) =>
  JSON.stringify({
    chain: hook === undefined
      ? { family, table, name, handle: 1 }
      : { family, table, name, handle: 1, type: "filter", hook, prio: 0, policy: "accept" },
  });
const doc = (...items: string[]) =>
  `{"nftables": ${JSON.stringify([{ metainfo: {} }, ...items.map((i) => JSON.parse(i))])}}\n`;

/** A runner answering each nft command line from `answers` (first match of its text). */
function runner(answers: [RegExp, CommandOutcome][]): { run: CommandRunner; calls: string[] } {
  const calls: string[] = [];
  const run: CommandRunner = (command, args) => {
    calls.push([command, ...args].join(" "));
    const found = answers.find(([pattern]) => pattern.test(args.join(" ")));
    return Promise.resolve(
      found?.[1] ?? { kind: "exited", code: 1, signal: null, stdout: "", stderr: "?" },
    );
  };
  return { run, calls };
}

const ok = (stdout: string): CommandOutcome => ({
  kind: "exited",
  code: 0,
  signal: null,
  stdout,
  stderr: "",
});

async function view(
  answers: [RegExp, CommandOutcome][],
  shown = new Map([["ipv4" as const, new Set(["filter"])]]),
): Promise<{ read: NftRead; calls: string[] }> {
  const { run, calls } = runner(answers);
  const listing = await listChains(run, 1000);
  const read = await readNftView(listing, { families: ["ipv4"], shown, run, timeoutMs: 1000 });
  return { read, calls };
}

const lines = (read: NftRead) =>
  (read.tables.get("ipv4") ?? []).flatMap((t) => t.rules.map((r) => `${t.table}|${r.text}`));

const NO_PATTERNS: Allowlist = {
  dir: "/x",
  patterns: new Map(),
  errors: [],
  readable: true,
  version: "",
};

function verdict(read: NftRead): string {
  return checkRules([{
    family: "ipv4",
    allowlist: NO_PATTERNS,
    read: { family: "ipv4", sources: [], errors: read.errors },
    nft: read.tables.get("ipv4"),
  }], { node: null }).verdict;
}

Deno.test("a node with only iptables' own tables: one nft call, nothing to check", async () => {
  const { read, calls } = await view([
    [
      /list chains/,
      ok(doc(CHAIN("ip", "filter", "INPUT", "input"), CHAIN("ip", "filter", "KUBE-X"))),
    ],
  ]);
  assert.deepEqual(calls, ["nft -j list chains; list flowtables"]);
  assert.deepEqual(lines(read), []);
  assert.deepEqual(read.errors, []);
  assert.equal(verdict(read), "false");
});

Deno.test("a kernel without nf_tables holds no nft objects: an empty view, no error", async () => {
  const { read } = await view([
    [/list chains/, {
      kind: "exited",
      code: 1,
      signal: null,
      stdout: "",
      stderr: "Error: cache initialization failed: Protocol not supported\n",
    }],
  ]);
  assert.deepEqual(lines(read), []);
  assert.deepEqual(read.errors, []);
});

Deno.test("what no rule can cause is an error and leaves the check undecided", async () => {
  for (
    const [outcome, message] of [
      [{ kind: "not-found" }, /nft is not installed/],
      [{ kind: "cannot-start", message: "Requires run access" }, /could not be started/],
      [
        {
          kind: "exited",
          code: 1,
          signal: null,
          stdout: "",
          stderr: "Error: Operation not permitted",
        },
        /not permitted/,
      ],
    ] as [CommandOutcome, RegExp][]
  ) {
    const { read } = await view([[/list chains/, outcome]]);
    assert.deepEqual(lines(read), []);
    assert.equal(read.errors.length, 1);
    assert.match(read.errors[0].message, message);
    assert.equal(read.errors[0].kind, "nft");
    assert.equal(verdict(read), "unknown");
  }
});

Deno.test("what rules could cause (a hang, output not understood) is a line: verdict true", async () => {
  for (
    const outcome of [
      { kind: "timeout" },
      ok("not json\n"),
      ok('{"something": "else"}\n'),
      {
        kind: "exited",
        code: 1,
        signal: null,
        stdout: "",
        stderr: "Error: unknown expression type",
      },
    ] as CommandOutcome[]
  ) {
    const { read } = await view([[/list chains/, outcome]]);
    assert.equal(lines(read).length, 1, JSON.stringify(outcome));
    assert.match(lines(read)[0], /^-\|# nft -j list chains/);
    assert.equal(verdict(read), "true");
  }
});

Deno.test("a table that cannot be listed: the whole ruleset instead, else what step 1 saw", async () => {
  const chains = ok(doc(CHAIN("inet", "t", "c", "input")));
  const table = ok(doc(
    '{"table": {"family": "inet", "name": "t"}}',
    CHAIN("inet", "t", "c", "input"),
    '{"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [{"drop": null}]}}',
  ));
  const separate = await view([[/list chains/, chains], [/list table inet t/, table]]);
  assert.deepEqual(separate.calls.slice(1), ["nft -j list table inet t"]);
  assert.deepEqual(lines(separate.read), [
    "inet t|add table inet t",
    "inet t|add chain inet t c { type filter hook input priority 0; policy accept; }",
    "inet t|add rule inet t c drop",
  ]);

  const fallback = await view([[/list chains/, chains], [/list ruleset/, table]]);
  assert.deepEqual(fallback.calls.slice(1), ["nft -j list table inet t", "nft -j list ruleset"]);
  assert.deepEqual(lines(fallback.read), lines(separate.read));

  const neither = await view([[/list chains/, chains], [/list ruleset/, { kind: "timeout" }]]);
  assert.deepEqual(lines(neither.read), [
    "inet t|add table inet t",
    "inet t|add chain inet t c { type filter hook input priority 0; policy accept; }",
    "inet t|# nft could not list table inet t: nft -j list ruleset did not finish within 1s and was killed",
  ]);
  assert.equal(verdict(neither.read), "true");
});

Deno.test("iptables' tables: listed in full when the save did not show them, else only odd chains", async () => {
  const chains = ok(doc(
    CHAIN("ip", "filter", "INPUT", "input"),
    JSON.stringify({
      chain: {
        family: "ip",
        table: "nat",
        name: "X",
        type: "filter",
        hook: "input",
        prio: -400,
        policy: "accept",
      },
    }),
    CHAIN("ip", "nat", "KUBE-SERVICES"),
  ));
  const { calls, read } = await view(
    [[/list chains/, chains], [/list/, ok(doc())]],
    new Map([["ipv4", new Set(["nat"])]]),
  );
  assert.deepEqual(calls.slice(1).sort(), [
    "nft -j list chain ip nat X",
    "nft -j list table ip filter",
  ]);
  assert.deepEqual(lines(read), [
    "ip nat|add chain ip nat X { type filter hook input priority -400; policy accept; }",
  ]);
});

Deno.test("many tables to list, or a name nft's command line cannot take: one list ruleset", async () => {
  const many = Array.from({ length: 9 }, (_, i) => CHAIN("inet", `t${i}`, "c", "input"));
  const ruleset = ok(doc(...many));
  const lots = await view([[/list chains/, ok(doc(...many))], [/list ruleset/, ruleset]]);
  assert.deepEqual(lots.calls.slice(1), ["nft -j list ruleset"]);
  assert.equal(lines(lots.read).length, 9);

  const odd = CHAIN("inet", "a b", "c", "input");
  const named = await view([[/list chains/, ok(doc(odd))], [/list ruleset/, ok(doc(odd))]]);
  assert.deepEqual(named.calls.slice(1), ["nft -j list ruleset"]);
  assert.deepEqual(lines(named.read), [
    'inet "a b"|add chain inet "a b" c { type filter hook input priority 0; policy accept; }',
  ]);
});

Deno.test("the nft view's findings reach the metrics like any unexpected rule", async () => {
  const { Metrics } = await import("../src/metrics.ts");
  const { read } = await view([
    [/list chains/, ok(doc(CHAIN("inet", "sneaky", "in", "input")))],
    [
      /list table inet sneaky/,
      ok(doc(
        '{"table": {"family": "inet", "name": "sneaky"}}',
        CHAIN("inet", "sneaky", "in", "input"),
      )),
    ],
  ]);
  const report = checkRules([{
    family: "ipv4",
    allowlist: NO_PATTERNS,
    read: { family: "ipv4", sources: [], errors: [] },
    nft: read.tables.get("ipv4"),
  }], { node: null });
  const metrics = new Metrics();
  metrics.recordCheck(report, 5, new Date(0));
  const text = metrics.render();
  assert.match(
    text,
    /azure_iptables_monitor_unexpected_rules\{family="ipv4",source="nft",table="inet sneaky"\} 2/,
  );
  assert.match(text, /azure_iptables_monitor_verdict\{verdict="true"\} 1/);
});
