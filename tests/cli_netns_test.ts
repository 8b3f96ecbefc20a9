/**
 * The whole program against real iptables: rulesets loaded with iptables-restore into
 * throw-away network namespaces (nf_tables and legacy, IPv4 and IPv6), then
 * `deno task monitor -once -dryRun -output json` run inside the namespace. Asserts the
 * exact set of unexpected rules per family, source and table, and the exit code.
 */
import assert from "node:assert/strict";
import type { Family } from "../src/iptables/types.ts";
import { type Backend, type Netns, netnsRequires, withNetns } from "./_support/netns.ts";
import { type Report, ReportSchema } from "./_support/report_schema.ts";

const REPO_ROOT = new URL("..", import.meta.url).pathname;
const RUN_TIMEOUT_MS = 180_000;

/**
 * Rulesets written exactly as iptables-save prints them back, so the expected lines below
 * are literal. Rules marked `user` are what the allowlists do not expect.
 */
const RULESETS: Record<Family, string> = {
  ipv4: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -d 10.1.2.3/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.9.9.9:8080
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -i lo -j ACCEPT
-A INPUT -s 1.2.3.4/32 -m comment --comment "block \\"bad\\" host" -j DROP
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack
-A OUTPUT -p tcp -m tcp --dport 9999 -j CT --notrack
COMMIT
*security
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 168.63.129.16/32 -p tcp -m owner --uid-owner 0 -j ACCEPT
COMMIT
`,
  ipv6: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -d fd00::10/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00::99]:8080
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT
-A INPUT -s 2001:db8::1/128 -m comment --comment "block \\"bad\\" host" -j DROP
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*security
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -d ff02::1/128 -j ACCEPT
COMMIT
`,
};

/** The allowlists: one file per table plus `global`, Go regexp syntax. */
const ALLOWLISTS: Record<Family, Record<string, string>> = {
  ipv4: {
    global: "^-P (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) (ACCEPT|DROP)$\n^-N KUBE-[A-Z]+$\n",
    nat: [
      '^-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES$',
      String.raw`^-A POSTROUTING -s 10\.244\.0\.0/16 ! -d 10\.244\.0\.0/16 -j MASQUERADE$`,
      "",
    ].join("\n"),
    mangle:
      "^-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu$\n",
    filter: [
      "^-A INPUT -j KUBE-FIREWALL$",
      "^-A INPUT -i lo -j ACCEPT$",
      String.raw`^-A KUBE-FIREWALL ! -s 127\.0\.0\.0/8 -d 127\.0\.0\.0/8 .* -j DROP$`,
      "",
    ].join("\n"),
    raw: "^-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack$\r\n",
    security:
      String.raw`^-A OUTPUT -d 168\.63\.129\.16/32 -p tcp -m owner --uid-owner 0 -j ACCEPT$` +
      "\n",
  },
  ipv6: {
    global: "^-P [A-Z]+ (ACCEPT|DROP)$\n^-N KUBE-\n",
    nat: '^-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES$\n',
    filter: "^-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT$\n",
    security: String.raw`^-A INPUT -d ff02::1/128 -j ACCEPT$` + "\n",
  },
};

/** What the allowlists above leave over in {@linkcode RULESETS}: `table|chain|rule`. */
const UNEXPECTED: Record<Family, string[]> = {
  ipv4: [
    "nat|PREROUTING|-A PREROUTING -d 10.1.2.3/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.9.9.9:8080",
    "filter|DOCKER-USER|-N DOCKER-USER",
    'filter|INPUT|-A INPUT -s 1.2.3.4/32 -m comment --comment "block \\"bad\\" host" -j DROP',
    "filter|FORWARD|-A FORWARD -j DOCKER-USER",
    "filter|DOCKER-USER|-A DOCKER-USER -j RETURN",
    "raw|OUTPUT|-A OUTPUT -p tcp -m tcp --dport 9999 -j CT --notrack",
  ],
  ipv6: [
    "nat|PREROUTING|-A PREROUTING -d fd00::10/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00::99]:8080",
    'filter|INPUT|-A INPUT -s 2001:db8::1/128 -m comment --comment "block \\"bad\\" host" -j DROP',
  ],
};

/** The user rule that only the legacy backend holds in the mixed-backend test. */
const LEGACY_RULE: Record<Family, string> = {
  ipv4: "-A INPUT -s 203.0.113.7/32 -p tcp -m tcp --dport 22 -j DROP",
  ipv6: "-A INPUT -s 2001:db8::7/128 -p tcp -m tcp --dport 22 -j DROP",
};

function legacyRuleset(family: Family): string {
  return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
    `${LEGACY_RULE[family]}\nCOMMIT\n`;
}

/** A ruleset with only the rules the allowlists expect: `RULESETS` minus `UNEXPECTED`. */
function cleanRuleset(family: Family): string {
  const unexpected = new Set(UNEXPECTED[family].map((entry) => entry.split("|")[2]));
  return RULESETS[family].split("\n").filter((line) => !unexpected.has(line)).join("\n")
    .replaceAll(":DOCKER-USER - [0:0]\n", "");
}

function tool(family: Family): string {
  return family === "ipv4" ? "iptables" : "ip6tables";
}

function sourceOf(family: Family, backend: Backend): string {
  return backend === "nft"
    ? `${tool(family)}-nft-save (nf_tables)`
    : `${tool(family)}-legacy-save (legacy)`;
}

/** How many lines `iptables -S` shows per table of a ruleset: every `:CHAIN` and `-A`. */
function ruleCounts(ruleset: string): Map<string, number> {
  const counts = new Map<string, number>();
  let table = "";
  for (const line of ruleset.split("\n")) {
    if (line.startsWith("*")) {
      table = line.slice(1);
      counts.set(table, 0);
    } else if (line.startsWith(":") || line.startsWith("-A ")) {
      counts.set(table, (counts.get(table) ?? 0) + 1);
    }
  }
  return counts;
}

async function writeAllowlists(): Promise<{ root: string; dirs: Record<Family, string> }> {
  const root = await Deno.makeTempDir({ prefix: "aim-allowlists-" });
  const dirs = { ipv4: `${root}/ipv4`, ipv6: `${root}/ipv6` };
  for (const family of ["ipv4", "ipv6"] as const) {
    await Deno.mkdir(dirs[family]);
    for (const [name, content] of Object.entries(ALLOWLISTS[family])) {
      await Deno.writeTextFile(`${dirs[family]}/${name}`, content);
    }
  }
  return { root, dirs };
}

/** Runs `deno task monitor -once -dryRun -output json` inside the namespace. */
async function monitor(ns: Netns, families: Family[]): Promise<{ code: number; report: Report }> {
  const { root, dirs } = await writeAllowlists();
  try {
    const flags = ["-once", "-dryRun", "-output", "json", `-input=${dirs.ipv4}`];
    if (families.includes("ipv6")) flags.push("-ipv6", `-input6=${dirs.ipv6}`);
    const outcome = await ns.run(
      Deno.execPath(),
      ["task", "--quiet", "--cwd", REPO_ROOT, "monitor", ...flags],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    if (outcome.kind !== "exited") assert.fail(`monitor did not run: ${JSON.stringify(outcome)}`);
    let json: unknown;
    try {
      json = JSON.parse(outcome.stdout);
    } catch {
      assert.fail(`exit ${outcome.code}, stdout is no JSON:\n${outcome.stdout}\n${outcome.stderr}`);
    }
    return { code: outcome.code, report: ReportSchema.parse(json) };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** `family|source|table|chain|rule` for every unexpected rule in the report, sorted. */
function unexpectedOf(report: Report): string[] {
  return report.families.flatMap(({ family, source, tables }) =>
    tables.flatMap(({ table, unexpected }) =>
      unexpected.map(({ chain, rule }) => [family, source, table, chain, rule].join("|"))
    )
  ).sort();
}

function expected(family: Family, source: string, entries: string[]): string[] {
  return entries.map((entry) => `${family}|${source}|${entry}`);
}

/** The `family|source` pairs of the report with the tables and rule counts of each. */
function shapeOf(report: Report): Record<string, Record<string, number>> {
  const shape: Record<string, Record<string, number>> = {};
  for (const { family, source, tables } of report.families) {
    shape[`${family}|${source}`] = Object.fromEntries(
      tables.map(({ table, rules }) => [table, rules]),
    );
  }
  return shape;
}

const FAMILIES: Family[] = ["ipv4", "ipv6"];
const BACKENDS: Backend[] = ["nft", "legacy"];
const TOOLS_NEEDED = { backends: BACKENDS, families: FAMILIES };

for (const backend of BACKENDS) {
  Deno.test({
    name: `monitor in a namespace (${backend}, IPv4 and IPv6): exactly the user rules, exit 1`,
    ...netnsRequires(TOOLS_NEEDED),
    fn: () =>
      withNetns(async (ns) => {
        for (const family of FAMILIES) await ns.restore(family, backend, RULESETS[family]);
        const { code, report } = await monitor(ns, FAMILIES);
        assert.deepEqual(report.errors, []);
        assert.equal(report.unexpected, true);
        assert.equal(code, 1);
        assert.equal(report.node, Deno.env.get("NODE_NAME") ?? null);
        assert.deepEqual(
          unexpectedOf(report),
          FAMILIES.flatMap((family) =>
            expected(family, sourceOf(family, backend), UNEXPECTED[family])
          ).sort(),
        );
        assert.deepEqual(shapeOf(report), {
          [`ipv4|${sourceOf("ipv4", backend)}`]: Object.fromEntries(ruleCounts(RULESETS.ipv4)),
          [`ipv6|${sourceOf("ipv6", backend)}`]: Object.fromEntries(ruleCounts(RULESETS.ipv6)),
          // the nft view: nothing iptables does not show
          "ipv4|nft": {},
          "ipv6|nft": {},
        });
      }),
  });
}

Deno.test({
  name: "monitor in a namespace: only the expected rules loaded, exit 0",
  ...netnsRequires(TOOLS_NEEDED),
  fn: () =>
    withNetns(async (ns) => {
      await ns.restore("ipv4", "legacy", cleanRuleset("ipv4"));
      await ns.restore("ipv6", "nft", cleanRuleset("ipv6"));
      const { code, report } = await monitor(ns, FAMILIES);
      assert.deepEqual(report.errors, []);
      assert.deepEqual(unexpectedOf(report), []);
      assert.equal(report.unexpected, false);
      assert.equal(code, 0);
      assert.deepEqual(Object.keys(shapeOf(report)).sort(), [
        `ipv4|${sourceOf("ipv4", "legacy")}`,
        "ipv4|nft",
        `ipv6|${sourceOf("ipv6", "nft")}`,
        "ipv6|nft",
      ]);
    }),
});

Deno.test({
  name: "monitor in a namespace: a user rule only the legacy backend holds is found",
  ...netnsRequires(TOOLS_NEEDED),
  fn: () =>
    withNetns(async (ns) => {
      for (const family of FAMILIES) {
        await ns.restore(family, "nft", cleanRuleset(family));
        await ns.restore(family, "legacy", legacyRuleset(family));
      }
      const { code, report } = await monitor(ns, FAMILIES);
      assert.deepEqual(report.errors, []);
      assert.deepEqual(
        unexpectedOf(report),
        FAMILIES.map((family) =>
          `${family}|${sourceOf(family, "legacy")}|filter|INPUT|${LEGACY_RULE[family]}`
        ).sort(),
      );
      assert.equal(report.unexpected, true);
      assert.equal(code, 1);
      const shape = shapeOf(report);
      for (const family of FAMILIES) {
        assert.deepEqual(shape[`${family}|${sourceOf(family, "legacy")}`], { filter: 4 });
        assert.deepEqual(
          shape[`${family}|${sourceOf(family, "nft")}`],
          Object.fromEntries(ruleCounts(cleanRuleset(family))),
        );
      }
    }),
});

Deno.test({
  name: "monitor in a namespace: IPv4 only without -ipv6, IPv6 rules not read",
  ...netnsRequires({ backends: ["nft"], families: FAMILIES }),
  fn: () =>
    withNetns(async (ns) => {
      await ns.restore("ipv4", "nft", cleanRuleset("ipv4"));
      await ns.restore("ipv6", "nft", RULESETS.ipv6);
      const { code, report } = await monitor(ns, ["ipv4"]);
      assert.deepEqual(report.errors, []);
      assert.deepEqual(report.families.map((family) => family.family), ["ipv4", "ipv4"]);
      assert.deepEqual(unexpectedOf(report), []);
      assert.equal(code, 0);
    }),
});
