/**
 * The ruleset generator: kube-proxy's chain-name hash, determinism, sizes, the shapes a
 * dump covers, and that real `iptables-restore`/`iptables-save` (both backends, both
 * families) load a dump and print it back unchanged.
 */
import assert from "node:assert/strict";
import { generateRuleset, kubeProxyHash } from "../bench/ruleset.ts";
import type { Family } from "../src/iptables/types.ts";
import { netnsRequires, withNetns } from "./_support/netns.ts";

const FAMILIES: Family[] = ["ipv4", "ipv6"];

/** The lines of each table of a dump, without `#` comments and with counters zeroed. */
function tableLines(dump: string): Map<string, string[]> {
  const tables = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of dump.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    if (line.startsWith("*")) {
      current = [];
      tables.set(line.slice(1), current);
      continue;
    }
    current?.push(line.replace(/\[[0-9]+:[0-9]+\]$/, "[0:0]"));
  }
  return tables;
}

function countLines(dump: string, test: (line: string) => boolean): number {
  return dump.split("\n").filter(test).length;
}

Deno.test("kubeProxyHash gives the chain names kube-proxy gives well-known services", () => {
  // Seen on real nodes: kube-dns and the kubernetes service hash the same everywhere.
  assert.equal(kubeProxyHash("kube-system/kube-dns:dnsudp"), "TCOU7JCQXEZGVUNU");
  assert.equal(kubeProxyHash("kube-system/kube-dns:dns-tcptcp"), "ERIFXISQEP7F7OF4");
  assert.equal(kubeProxyHash("kube-system/kube-dns:metricstcp"), "JD5MR3NA4I4DYORP");
  assert.equal(kubeProxyHash("default/kubernetes:httpstcp"), "NPX46M4PTMTKRN6Y");
});

Deno.test("the same seed gives the same dump, another seed another one", () => {
  for (const family of FAMILIES) {
    const a = generateRuleset({ services: 200, family, seed: 42, userRules: true });
    const b = generateRuleset({ services: 200, family, seed: 42, userRules: true });
    const c = generateRuleset({ services: 200, family, seed: 43, userRules: true });
    assert.equal(a.dump, b.dump);
    assert.deepEqual(a.userRules, b.userRules);
    assert.notEqual(a.dump, c.dump);
  }
});

Deno.test("ruleCount counts -A rules and lineCount every line the monitor checks", () => {
  for (const family of FAMILIES) {
    const g = generateRuleset({ services: 150, family, userRules: true });
    assert.equal(g.ruleCount, countLines(g.dump, (l) => l.startsWith("-A ")));
    assert.equal(g.lineCount, g.ruleCount + countLines(g.dump, (l) => l.startsWith(":")));
  }
});

Deno.test("sizes follow the service count: about 7.5 rules per service", () => {
  for (const [services, low, high] of [[1000, 6000, 9000], [5000, 30000, 45000]]) {
    const g = generateRuleset({ services, family: "ipv4" });
    assert(g.ruleCount >= low && g.ruleCount <= high, `${services}: ${g.ruleCount} rules`);
  }
  const none = generateRuleset({ services: 0, family: "ipv6" });
  assert.equal(countLines(none.dump, (l) => l.startsWith("-A KUBE-SERVICES -d")), 0);
});

Deno.test("every table is present, with policies, and every rule's chain is declared", () => {
  for (const family of FAMILIES) {
    const tables = tableLines(generateRuleset({ services: 60, family, userRules: true }).dump);
    assert.deepEqual([...tables.keys()].sort(), ["filter", "mangle", "nat", "raw", "security"]);
    for (const [name, lines] of tables) {
      assert.equal(lines.at(-1), "COMMIT", name);
      const declared = new Set(lines.filter((l) => l.startsWith(":")).map((l) => l.split(" ")[0]));
      for (const rule of lines.filter((l) => l.startsWith("-A "))) {
        assert(declared.has(`:${rule.split(" ")[1]}`), `${name}: undeclared chain in ${rule}`);
      }
    }
    assert(tables.get("filter")!.includes(":FORWARD ACCEPT [0:0]"));
  }
});

Deno.test("a small dump already shows every kube-proxy shape", () => {
  for (const family of FAMILIES) {
    const { dump } = generateRuleset({ services: 20, family });
    for (
      const needle of [
        /^-A KUBE-EXT-[A-Z2-7]{16} -m comment --comment "masquerade traffic for /m,
        /^-A KUBE-EXT-[A-Z2-7]{16} -m comment --comment "route LOCAL traffic for /m,
        /^-A KUBE-EXT-[A-Z2-7]{16} -j KUBE-SVL-[A-Z2-7]{16}$/m,
        /^-A KUBE-FW-[A-Z2-7]{16} -m comment --comment "other traffic to /m,
        /^-A KUBE-PROXY-FIREWALL -d /m,
        /^-A KUBE-NODEPORTS -p tcp -m comment --comment "[^"]+ health check node port"/m,
        /^-A KUBE-SERVICES -d [^ ]+ -p [a-z]+ -m comment --comment "[^"]+ external IP"/m,
        /has no endpoints" -m (tcp|udp) --dport [0-9]+ -j REJECT --reject-with icmp6?-port-unr/m,
        /has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport [0-9]+ -j DROP$/m,
        /^-A KUBE-SERVICES -d [^ ]+ -p tcp -m comment --comment "[^"]+ cluster IP" -m tcp --dport [0-9]+ -j KUBE-SVL-/m,
        / -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-/m,
        / -m recent --set --name KUBE-SEP-[A-Z2-7]{16} --mask /m,
        / -m statistic --mode random --probability 0\.33333333349 -j KUBE-SEP-/m,
        /^-A KUBE-SEP-[A-Z2-7]{16} -p udp -m comment /m,
      ]
    ) {
      assert.match(dump, needle, `${family}: ${needle}`);
    }
  }
});

Deno.test("per-endpoint comments disappear above 1000 endpoints, as in kube-proxy", () => {
  const small = generateRuleset({ services: 100, family: "ipv4" }).dump;
  const large = generateRuleset({ services: 1000, family: "ipv4" }).dump;
  assert.match(small, /^-A KUBE-SEP-[A-Z2-7]{16} -s [0-9.]+\/32 -m comment --comment "/m);
  assert.equal(countLines(large, (l) => /^-A KUBE-SEP-\S+ -s \S+ -m comment/.test(l)), 0);
  assert.match(large, /^-A KUBE-SEP-[A-Z2-7]{16} -p tcp -m tcp -j DNAT --to-destination /m);
  // The cluster-IP rules keep their comments in both modes.
  assert.match(large, /^-A KUBE-SERVICES -d \S+ -p tcp -m comment --comment "[^"]+ cluster IP"/m);
});

Deno.test("planted user rules are in the dump exactly once and only when asked for", () => {
  for (const family of FAMILIES) {
    const g = generateRuleset({ services: 50, family, userRules: true });
    assert.equal(g.userRules.length, 5);
    const tables = tableLines(g.dump);
    for (const { table, rule } of g.userRules) {
      const line = rule.startsWith("-N ") ? `:${rule.slice(3)} - [0:0]` : rule;
      assert.equal(tables.get(table)!.filter((l) => l === line).length, 1, `${table}: ${rule}`);
    }
    const clean = generateRuleset({ services: 50, family });
    assert.deepEqual(clean.userRules, []);
    assert(!clean.dump.includes("DOCKER-USER"));
    assert.equal(g.lineCount - clean.lineCount, 5);
  }
});

Deno.test({
  name: "iptables-restore loads the dumps and iptables-save prints them back unchanged",
  ...netnsRequires({ backends: ["nft", "legacy"], families: FAMILIES }),
  fn: () =>
    withNetns(async (ns) => {
      for (const backend of ["nft", "legacy"] as const) {
        for (const family of FAMILIES) {
          // 40 services show every shape; 700 cross kube-proxy's large-cluster threshold.
          for (const services of [40, 700]) {
            const g = generateRuleset({ services, family, userRules: services === 40 });
            await ns.restore(family, backend, g.dump);
            const tool = `${family === "ipv4" ? "iptables" : "ip6tables"}-${backend}-save`;
            const saved = tableLines(await ns.exec(tool));
            for (const [table, lines] of tableLines(g.dump)) {
              assert.deepEqual(
                saved.get(table),
                lines,
                `${backend} ${family} ${services}: ${table}`,
              );
            }
          }
        }
      }
    }),
});
