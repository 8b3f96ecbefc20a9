/**
 * What iptables cannot show, against the real tools: a realistic Cilium/AKS node
 * (bench/ruleset.ts, loaded with iptables-nft-restore) in a throw-away network namespace,
 * checked with the shipped allowlists (clean: exit 0), then one way of hiding a rule at
 * a time (an incompatible table, an extra base chain, a native table of each family,
 * arptables/ebtables tables, a hostile table name, ...): each gives exit 1 with the
 * object's line in the JSON and the text report, and the node is clean again once they
 * are removed. A kube-proxy-nftables node is clean too, and changes inside kube-proxy's
 * table that kube-proxy would not make are flagged.
 */
import assert from "node:assert/strict";
import { generateKubeProxyNft } from "../bench/kube_proxy_nft.ts";
import { generateRuleset } from "../bench/ruleset.ts";
import { patternLines } from "../src/patterns/allowlist.ts";
import { askGo } from "./_support/go_oracle.ts";
import { loadNft, type Netns, netnsRequires, withNetns } from "./_support/netns.ts";
import { type Report, ReportSchema } from "./_support/report_schema.ts";
import { missing, requires } from "./_support/requires.ts";

const REPO_ROOT = new URL("..", import.meta.url).pathname;
const PATTERNS = `${REPO_ROOT}patterns`;
const RUN_TIMEOUT_MS = 180_000;

const needs = () => {
  const netns = netnsRequires({ backends: ["nft"], families: ["ipv4", "ipv6"] });
  if (netns.ignore) return netns;
  return requires({ root: true, commands: ["nft", "arptables-nft", "ebtables-nft"] });
};

interface Run {
  code: number;
  report: Report;
  text: string;
  stderr: string;
}

/** `deno task monitor -once -dryRun` with the shipped allowlists, JSON and text. */
async function monitor(ns: Netns, extra: string[] = []): Promise<Run> {
  const flags = [
    "-once",
    "-dryRun",
    "-ipv6",
    `-input=${PATTERNS}/ipv4`,
    `-input6=${PATTERNS}/ipv6`,
    ...extra,
  ];
  const run = async (output: string) => {
    const outcome = await ns.run(
      Deno.execPath(),
      ["task", "--quiet", "--cwd", REPO_ROOT, "monitor", ...flags, "-output", output],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    if (outcome.kind !== "exited") assert.fail(`monitor did not run: ${JSON.stringify(outcome)}`);
    return outcome;
  };
  const json = await run("json");
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.stdout);
  } catch {
    assert.fail(`exit ${json.code}, stdout is no JSON:\n${json.stdout}\n${json.stderr}`);
  }
  const text = await run("text");
  assert.equal(text.code, json.code);
  return {
    code: json.code,
    report: ReportSchema.parse(parsed),
    text: text.stdout,
    stderr: json.stderr,
  };
}

/** `family|source|table|rule` of every unexpected line. */
function unexpectedOf(report: Report): string[] {
  return report.families.flatMap(({ family, source, tables }) =>
    tables.flatMap(({ table, unexpected }) =>
      unexpected.map(({ rule }) => [family, source, table, rule].join("|"))
    )
  ).sort();
}

async function loadCleanNode(ns: Netns): Promise<void> {
  for (const family of ["ipv4", "ipv6"] as const) {
    await ns.restore(family, "nft", generateRuleset({ services: 40, family, seed: 7 }).dump);
  }
}

/** One way of hiding a rule: how to add it, what must be reported, how to take it away. */
interface HidingCase {
  name: string;
  add: (ns: Netns) => Promise<void>;
  /** `family|source|table|rule` lines that must be among the unexpected ones. */
  expect: string[];
  remove: (ns: Netns) => Promise<void>;
}

const dropTable = (family: string, name: string) => (ns: Netns) =>
  loadNft(ns, `delete table ${family} ${name}\n`);

function nativeTable(
  family: string,
  hook: string,
  reportFamily: "ipv4" | "ipv6",
  device = "",
): HidingCase {
  const chainSpec = `type filter hook ${hook}${device} priority -10;`;
  const shownDevice = ""; // nft 1.0.6's JSON leaves out a netdev chain's device
  return {
    name: `a native ${family} table with a ${hook} hook`,
    add: (ns) =>
      loadNft(
        ns,
        `add table ${family} sneaky\nadd chain ${family} sneaky c { ${chainSpec} }\n` +
          `add rule ${family} sneaky c counter drop\n`,
      ),
    expect: [
      `${reportFamily}|nft|${family} sneaky|add table ${family} sneaky`,
      `${reportFamily}|nft|${family} sneaky|add chain ${family} sneaky c { type filter hook ${hook}${shownDevice} priority -10; policy accept; }`,
      `${reportFamily}|nft|${family} sneaky|add rule ${family} sneaky c counter drop`,
    ],
    remove: dropTable(family, "sneaky"),
  };
}

const CASES: HidingCase[] = [
  {
    name: "a table iptables-nft-save marks incompatible",
    add: async (ns) => {
      await ns.exec("iptables-nft", ["-w", "30", "-A", "INPUT", "-s", "6.6.6.6/32", "-j", "DROP"]);
      await loadNft(ns, "add rule ip filter INPUT numgen inc mod 2 0 drop\n");
    },
    expect: [
      "ipv4|nft|ip filter|add table ip filter",
      "ipv4|nft|ip filter|add rule ip filter INPUT ip saddr 6.6.6.6 counter drop",
      "ipv4|nft|ip filter|add rule ip filter INPUT numgen inc mod 2 0 drop",
    ],
    remove: loadCleanNode,
  },
  {
    name: "an extra base chain inside iptables' filter table",
    add: (ns) =>
      loadNft(
        ns,
        "add chain ip filter SNEAKY { type filter hook input priority -400; }\n" +
          "add rule ip filter SNEAKY tcp dport 22 drop\n",
      ),
    expect: [
      "ipv4|nft|ip filter|add chain ip filter SNEAKY { type filter hook input priority -400; policy accept; }",
      "ipv4|nft|ip filter|add rule ip filter SNEAKY tcp dport 22 drop",
    ],
    remove: loadCleanNode,
  },
  {
    name: "a chain in iptables' filter table named to forge dump lines (no hook)",
    add: (ns) => {
      const name = "X\nCOMMIT\n*raw\n:PREROUTING ACCEPT [0:0]";
      const rule = { family: "ip", table: "filter", chain: name, expr: [{ drop: null }] };
      return loadNft(
        ns,
        JSON.stringify({
          nftables: [
            { add: { chain: { family: "ip", table: "filter", name } } },
            { add: { rule } },
          ],
        }),
        { json: true },
      );
    },
    expect: [
      'ipv4|nft|ip filter|add chain ip filter "X\\nCOMMIT\\n*raw\\n:PREROUTING ACCEPT [0:0]"',
      'ipv4|nft|ip filter|add rule ip filter "X\\nCOMMIT\\n*raw\\n:PREROUTING ACCEPT [0:0]" drop',
    ],
    remove: loadCleanNode,
  },
  {
    name: "an extra base chain inside ip6tables' raw table",
    add: (ns) =>
      loadNft(
        ns,
        "add chain ip6 raw SNEAKY { type filter hook prerouting priority -450; }\n" +
          "add rule ip6 raw SNEAKY ip6 saddr 2001:db8::66 drop\n",
      ),
    expect: [
      "ipv6|nft|ip6 raw|add chain ip6 raw SNEAKY { type filter hook prerouting priority -450; policy accept; }",
      "ipv6|nft|ip6 raw|add rule ip6 raw SNEAKY ip6 saddr 2001:db8::66 drop",
    ],
    remove: loadCleanNode,
  },
  nativeTable("ip", "input", "ipv4"),
  nativeTable("ip6", "input", "ipv6"),
  nativeTable("inet", "input", "ipv4"),
  nativeTable("arp", "input", "ipv4"),
  nativeTable("bridge", "forward", "ipv4"),
  nativeTable("netdev", "ingress", "ipv4", " device lo"),
  {
    name: "arptables-nft and ebtables-nft rules",
    add: async (ns) => {
      await ns.exec("arptables-nft", ["-A", "INPUT", "-j", "DROP"]);
      await ns.exec("ebtables-nft", ["-A", "FORWARD", "-j", "DROP"]);
    },
    expect: [
      "ipv4|nft|arp filter|add rule arp filter INPUT arp htype 1 arp hlen 6 arp plen 4 counter drop",
      "ipv4|nft|bridge filter|add rule bridge filter FORWARD counter drop",
    ],
    remove: async (ns) => {
      await dropTable("arp", "filter")(ns);
      await dropTable("bridge", "filter")(ns);
    },
  },
  {
    name: "a table, chain and rule with hostile names (newline, quotes), made through nft's JSON",
    add: async (ns) => {
      const table = 'a\nb "q';
      const script = JSON.stringify({
        nftables: [
          { add: { table: { family: "inet", name: table } } },
          {
            add: {
              chain: {
                family: "inet",
                table,
                name: "c\nd",
                type: "filter",
                hook: "input",
                prio: 0,
                policy: "accept",
              },
            },
          },
          { add: { rule: { family: "inet", table, chain: "c\nd", expr: [{ drop: null }] } } },
        ],
      });
      const file = await Deno.makeTempFile({ prefix: "aim-nft-" });
      try {
        await Deno.writeTextFile(file, script);
        await ns.exec("nft", ["-j", "-f", file]);
      } finally {
        await Deno.remove(file);
      }
    },
    expect: [
      'ipv4|nft|inet "a\\nb \\"q"|add rule inet "a\\nb \\"q" "c\\nd" drop',
    ],
    remove: async (ns) => {
      const file = await Deno.makeTempFile({ prefix: "aim-nft-" });
      try {
        await Deno.writeTextFile(
          file,
          JSON.stringify({
            nftables: [{ delete: { table: { family: "inet", name: 'a\nb "q' } } }],
          }),
        );
        await ns.exec("nft", ["-j", "-f", file]);
      } finally {
        await Deno.remove(file);
      }
    },
  },
  {
    name: "a native table whose rule rejects what a set of its own lists",
    add: (ns) =>
      loadNft(
        ns,
        "add table inet t2\nadd set inet t2 bad { type ipv4_addr; }\n" +
          "add element inet t2 bad { 192.0.2.9 }\n" +
          "add chain inet t2 out { type filter hook output priority 0; }\n" +
          "add rule inet t2 out ip daddr @bad reject\n",
      ),
    expect: [
      'ipv4|nft|inet t2|add set inet t2 bad {"type":"ipv4_addr"}',
      "ipv4|nft|inet t2|add element inet t2 bad { 192.0.2.9 }",
      "ipv4|nft|inet t2|add rule inet t2 out ip daddr @bad reject with icmp port-unreachable",
    ],
    remove: dropTable("inet", "t2"),
  },
];

Deno.test({
  name: "nft view: a clean node is 0; each way of hiding a rule is 1 with the object listed",
  ...needs(),
  fn: (t) =>
    withNetns(async (ns) => {
      await loadCleanNode(ns);
      const clean = await monitor(ns);
      assert.deepEqual(clean.report.errors, [], clean.stderr);
      assert.deepEqual(unexpectedOf(clean.report), []);
      assert.equal(clean.code, 0);
      assert.deepEqual(
        clean.report.families.map((f) => `${f.family}|${f.source}`),
        [
          "ipv4|iptables-nft-save (nf_tables)",
          "ipv4|nft",
          "ipv6|ip6tables-nft-save (nf_tables)",
          "ipv6|nft",
        ],
        "the nft view is a source of its own",
      );

      for (const hiding of CASES) {
        await t.step(hiding.name, async () => {
          await hiding.add(ns);
          const run = await monitor(ns);
          const found = unexpectedOf(run.report);
          for (const line of hiding.expect) {
            assert.ok(found.includes(line), `${line}\nnot among:\n${found.join("\n")}`);
            const rule = line.split("|").slice(3).join("|");
            assert.ok(run.text.includes(rule), `the text report lacks ${rule}`);
          }
          assert.equal(run.report.unexpected, true);
          assert.equal(run.code, 1);
          assert.match(run.stderr, /unexpected rule in ipv[46] .* \(nft\): add /);
          await hiding.remove(ns);
        });
      }

      await t.step("with every one of them removed, the node is clean again", async () => {
        const after = await monitor(ns);
        assert.deepEqual(unexpectedOf(after.report), []);
        assert.equal(after.code, 0);
      });

      await t.step("a flowtable: flow offload bypasses the iptables chains", async () => {
        await ns.exec("ip", ["link", "add", "aimft0", "type", "veth", "peer", "name", "aimft1"]);
        const script = "add table inet ft\n" +
          "add flowtable inet ft f { hook ingress priority 0; devices = { aimft0 }; }\n" +
          "add chain inet ft fwd { type filter hook forward priority 0; }\n" +
          "add rule inet ft fwd meta l4proto tcp flow add @f\n";
        try {
          await loadNft(ns, script);
        } catch (error) {
          // A kernel feature (nf_flow_table), not a tool CI could install.
          console.warn(`skipped: this kernel has no flowtables: ${error}`);
          return;
        }
        const run = await monitor(ns);
        const found = unexpectedOf(run.report);
        for (
          const line of [
            "ipv4|nft|inet ft|add flowtable inet ft f { hook ingress; priority 0; devices = { aimft0 }; }",
            "ipv4|nft|inet ft|add rule inet ft fwd meta l4proto tcp flow add @f",
          ]
        ) {
          assert.ok(found.includes(line), `${line}\nnot among:\n${found.join("\n")}`);
        }
        assert.equal(run.code, 1);
        await loadNft(ns, "delete table inet ft\n");
      });

      await t.step("-nftables=false: the Go original's view, the native table unseen", async () => {
        await CASES[5].add(ns);
        const run = await monitor(ns, ["-nftables=false"]);
        assert.equal(run.code, 0);
        assert.ok(run.report.families.every((f) => f.source !== "nft"));
        await CASES[5].remove(ns);
      });
    }),
});

Deno.test({
  name: "nft view: without nft, one error per check and no verdict (exit 2), JSON and log",
  ...needs(),
  fn: async () => {
    const bin = await Deno.makeTempDir({ prefix: "aim-path-" });
    try {
      for (
        const name of [
          "iptables-nft-save",
          "ip6tables-nft-save",
          "iptables-legacy-save",
          "ip6tables-legacy-save",
        ]
      ) {
        const path =
          (await new Deno.Command("sh", { args: ["-c", `command -v ${name}`] }).output()).stdout;
        await Deno.symlink(new TextDecoder().decode(path).trim(), `${bin}/${name}`);
      }
      await withNetns(async (ns) => {
        await loadCleanNode(ns);
        const outcome = await ns.run(
          "env",
          [
            `PATH=${bin}`,
            Deno.execPath(),
            "task",
            "--quiet",
            "--cwd",
            REPO_ROOT,
            "monitor",
            "-once",
            "-dryRun",
            "-output=json",
            `-input=${PATTERNS}/ipv4`,
          ],
          { timeoutMs: RUN_TIMEOUT_MS },
        );
        assert.equal(outcome.kind, "exited");
        if (outcome.kind !== "exited") return;
        const report = ReportSchema.parse(JSON.parse(outcome.stdout));
        const errors = report.errors.filter((e) => e.kind === "nft");
        assert.equal(errors.length, 1, JSON.stringify(report.errors));
        assert.match(errors[0].message, /nft is not installed .*-nftables=false/);
        assert.equal(outcome.stderr.match(/nft is not installed/g)?.length, 1, outcome.stderr);
        assert.equal(outcome.code, 2);
      });
    } finally {
      await Deno.remove(bin, { recursive: true });
    }
  },
});

const KUBE_PROXY_ATTACKS: { name: string; script: string; line: string }[] = [
  {
    name: "a drop verdict slipped into kube-proxy's service map",
    script: "add element ip kube-proxy service-ips { 10.96.200.1 . tcp . 22 : drop }\n",
    line:
      "ipv4|nft|ip kube-proxy|add element ip kube-proxy service-ips { 10.96.200.1 . tcp . 22 : drop }",
  },
  {
    name: "a rule of one's own in kube-proxy's filter-input chain",
    script: "add rule ip kube-proxy filter-input tcp dport 22 drop\n",
    line: "ipv4|nft|ip kube-proxy|add rule ip kube-proxy filter-input tcp dport 22 drop",
  },
  {
    name: "a base chain of one's own in kube-proxy's ip6 table",
    script: "add chain ip6 kube-proxy sneaky { type filter hook input priority -500; }\n",
    line:
      "ipv6|nft|ip6 kube-proxy|add chain ip6 kube-proxy sneaky { type filter hook input priority -500; policy accept; }",
  },
];

Deno.test({
  name: "nft view: a kube-proxy-nftables node is 0; what kube-proxy would not add is 1",
  ...needs(),
  fn: (t) =>
    withNetns(async (ns) => {
      await loadCleanNode(ns);
      const kubeProxy = async () => {
        await loadNft(ns, await generateKubeProxyNft({ family: "ipv4", services: 60 }));
        await loadNft(ns, await generateKubeProxyNft({ family: "ipv6", services: 60 }));
      };
      await kubeProxy();
      const clean = await monitor(ns);
      assert.deepEqual(clean.report.errors, [], clean.stderr);
      assert.deepEqual(unexpectedOf(clean.report), []);
      assert.equal(clean.code, 0);
      const nftTables = clean.report.families.filter((f) => f.source === "nft")
        .flatMap((f) => f.tables.map((table) => `${table.table}:${table.rules > 500}`));
      assert.deepEqual(nftTables, ["ip kube-proxy:true", "ip6 kube-proxy:true"]);

      for (const attack of KUBE_PROXY_ATTACKS) {
        await t.step(attack.name, async () => {
          await loadNft(ns, attack.script);
          const run = await monitor(ns);
          assert.deepEqual(unexpectedOf(run.report), [attack.line]);
          assert.equal(run.code, 1);
          await loadNft(ns, "delete table ip kube-proxy\ndelete table ip6 kube-proxy\n");
          await kubeProxy();
        });
      }
    }),
});

Deno.test({
  name:
    "nft view: Go's regexp compiles the shipped nftables patterns and agrees on kube-proxy's lines",
  ignore: missing({ commands: ["go"] }) !== undefined,
  fn: async () => {
    // The lines the monitor checks for kube-proxy's tables, as the netns test above sees
    // them, are the patterns' inputs here; a look-alike with a drop must not match.
    for (const family of ["ipv4", "ipv6"] as const) {
      const patterns = patternLines(Deno.readTextFileSync(`${PATTERNS}/${family}/nftables`))
        .map((p) => p.pattern);
      const fam = family === "ipv4" ? "ip" : "ip6";
      const inputs = [
        `add table ${fam} kube-proxy`,
        `add chain ${fam} kube-proxy services`,
        `add rule ${fam} kube-proxy nat-output jump services`,
        `add rule ${fam} kube-proxy filter-input tcp dport 22 drop`,
        `add element ${fam} kube-proxy service-ips { 10.96.200.1 . tcp . 22 : drop }`,
      ];
      const verdicts = await askGo(patterns.map((pattern) => ({ pattern, inputs })));
      const accepted = new Set<string>();
      verdicts.forEach((verdict, i) => {
        assert.equal(verdict.error, null, `Go rejects ${patterns[i]}`);
        assert.equal(verdict.divergence, null, patterns[i]);
        verdict.matches.forEach((hit, j) => hit && accepted.add(inputs[j]));
      });
      assert.deepEqual([...accepted].sort(), inputs.slice(0, 3).sort());
    }
  },
});
