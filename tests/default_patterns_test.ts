/**
 * The allowlists shipped in `patterns/`: through the program's command line they accept
 * a realistic node completely and flag exactly the hand-made rules on it, they accept the
 * rules seen on real nodes, they flag look-alikes, and Go's `regexp` agrees with all that.
 */
import assert from "node:assert/strict";
import { generateRuleset } from "../bench/ruleset.ts";
import { type TableName, TABLES } from "../src/iptables/types.ts";
import { runMonitor } from "./_support/cli.ts";
import { askGo, type OracleCase } from "./_support/go_oracle.ts";
import { requires } from "./_support/requires.ts";
import { type Report, ReportSchema } from "./_support/report_schema.ts";

const PATTERNS = new URL("../patterns/", import.meta.url).pathname;

/** Runs one check of both families against dumps, with the shipped allowlists. */
async function check(dump4: string, dump6: string): Promise<{ code: number; report: Report }> {
  const dir = await Deno.makeTempDir({ prefix: "aim-patterns-" });
  try {
    await Deno.writeTextFile(`${dir}/v4`, dump4);
    await Deno.writeTextFile(`${dir}/v6`, dump6);
    const result = await runMonitor([
      "-once",
      "-dryRun",
      "-output",
      "json",
      "-ipv6",
      `-input=${PATTERNS}ipv4`,
      `-input6=${PATTERNS}ipv6`,
      `-rulesFile=${dir}/v4`,
      `-rulesFile6=${dir}/v6`,
    ]);
    const report = ReportSchema.parse(JSON.parse(result.stdout));
    return { code: result.code, report };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The flagged rules of one family as sorted `table: rule` strings. */
function flagged(report: Report, family: "ipv4" | "ipv6"): string[] {
  const entry = report.families.find((f) => f.family === family);
  assert.ok(entry, `no ${family} in the report`);
  return entry.tables.flatMap((t) => t.unexpected.map((u) => `${t.table}: ${u.rule}`)).sort();
}

function checkedLines(report: Report, family: "ipv4" | "ipv6"): number {
  const entry = report.families.find((f) => f.family === family);
  return entry ? entry.tables.reduce((sum, t) => sum + t.rules, 0) : -1;
}

const BUILTINS: Record<TableName, string[]> = {
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  raw: ["PREROUTING", "OUTPUT"],
  security: ["INPUT", "FORWARD", "OUTPUT"],
};

/**
 * A dump holding `lines` (as `iptables -S` prints them) per table: `-P` sets a policy,
 * `-N` declares a chain, and chains that `-A` lines use are declared automatically.
 */
function dumpOf(lines: Partial<Record<TableName, string[]>>): string {
  const out: string[] = [];
  for (const table of TABLES) {
    const rules = lines[table] ?? [];
    const policies = new Map(BUILTINS[table].map((c) => [c, "ACCEPT"]));
    const chains = new Set<string>();
    for (const line of rules) {
      const [verb, chain, policy] = line.split(" ");
      if (verb === "-P") policies.set(chain, policy);
      else if (!policies.has(chain)) chains.add(chain);
    }
    out.push(`*${table}`);
    for (const [chain, policy] of policies) out.push(`:${chain} ${policy} [0:0]`);
    for (const chain of chains) out.push(`:${chain} - [0:0]`);
    out.push(...rules.filter((l) => l.startsWith("-A ")), "COMMIT");
  }
  return out.join("\n") + "\n";
}

Deno.test("the shipped allowlists accept a 300-service node and flag exactly the user rules", async () => {
  const v4 = generateRuleset({ services: 300, family: "ipv4", userRules: true, seed: 11 });
  const v6 = generateRuleset({ services: 300, family: "ipv6", userRules: true, seed: 12 });
  const { code, report } = await check(v4.dump, v6.dump);
  assert.equal(code, 1);
  assert.equal(report.unexpected, true);
  assert.deepEqual(report.errors, []);
  for (const [family, generated] of [["ipv4", v4], ["ipv6", v6]] as const) {
    const planted = generated.userRules.map((u) => `${u.table}: ${u.rule}`).sort();
    assert.equal(planted.length, 5);
    assert.deepEqual(flagged(report, family), planted);
    assert.equal(checkedLines(report, family), generated.lineCount);
  }
});

Deno.test("a node without user rules is clean, also in kube-proxy's large-cluster mode", async () => {
  // 1200 services have more than 1000 endpoints: kube-proxy then drops endpoint comments.
  const v4 = generateRuleset({ services: 1200, family: "ipv4", seed: 21 });
  const v6 = generateRuleset({ services: 1200, family: "ipv6", seed: 22 });
  const { code, report } = await check(v4.dump, v6.dump);
  assert.deepEqual(flagged(report, "ipv4"), []);
  assert.deepEqual(flagged(report, "ipv6"), []);
  assert.equal(report.unexpected, false);
  assert.equal(code, 0);
  assert.equal(checkedLines(report, "ipv4"), v4.lineCount);
});

/**
 * Rules copied from real nodes and from the components' sources (see patterns/README.md):
 * Cilium 1.x nodes with kube-proxy 1.2x/1.3x, AKS nodes (AgentBaker, WALinuxAgent,
 * azure-ip-masq-agent-v2, Azure CNS), in the exact text `iptables -S` printed there.
 */
const SEEN_ON_NODES: Partial<Record<TableName, string[]>> = {
  filter: [
    '-A INPUT -m comment --comment "cilium-feeder: CILIUM_INPUT" -j CILIUM_INPUT',
    '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
    '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    "-A INPUT -j KUBE-FIREWALL",
    "-A INPUT -p udp -m udp --dport 68 -j ACCEPT",
    '-A FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j CILIUM_FORWARD',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 80 -j DROP",
    "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 32526 -j DROP",
    '-A FORWARD ! -s 10.224.0.5/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment "AKS managed: added by AgentBaker ensureIMDSRestriction for IMDS restriction feature" -j DROP',
    '-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT" -j CILIUM_OUTPUT',
    '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    "-A OUTPUT -j KUBE-FIREWALL",
    '-A CILIUM_FORWARD -o cilium_host -m comment --comment "cilium: any->cluster on cilium_host forward accept" -j ACCEPT',
    '-A CILIUM_FORWARD -i cilium_host -m comment --comment "cilium: cluster->any on cilium_host forward accept (nodeport)" -j ACCEPT',
    '-A CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept" -j ACCEPT',
    '-A CILIUM_FORWARD -i cilium_net -m comment --comment "cilium: cluster->any on cilium_net forward accept (nodeport)" -j ACCEPT',
    '-A CILIUM_FORWARD -o lxc+ -m comment --comment "cilium: any->cluster on lxc+ forward accept" -j ACCEPT',
    '-A CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept (nodeport)" -j ACCEPT',
    '-A CILIUM_INPUT -m mark --mark 0x200/0xf00 -m comment --comment "cilium: ACCEPT for proxy traffic" -j ACCEPT',
    '-A CILIUM_OUTPUT -m mark --mark 0xa00/0xe00 -m comment --comment "cilium: ACCEPT for proxy traffic" -j ACCEPT',
    '-A CILIUM_OUTPUT -m mark --mark 0xa00/0xfffffeff -m comment --comment "cilium: ACCEPT for proxy return traffic" -j ACCEPT',
    '-A CILIUM_OUTPUT -m mark --mark 0x800/0xe00 -m comment --comment "cilium: ACCEPT for l7 proxy upstream traffic" -j ACCEPT',
    '-A CILIUM_OUTPUT -m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0xd00/0xf00 -m mark ! --mark 0xa00/0xe00 -m comment --comment "cilium: host->any mark as from host" -j MARK --set-xmark 0xc00/0xf00',
    '-A CILIUM_OUTPUT -m mark ! --mark 0xd00/0xf00 -m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0x400/0xf00 -m mark ! --mark 0xa00/0xe00 -m mark ! --mark 0x800/0xe00 -m comment --comment "cilium: host->any mark as from host" -j MARK --set-xmark 0xc00/0xf00',
    '-A CILIUM_OUTPUT -m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0xd00/0xf00 -m mark ! --mark 0x400/0xf00 -m mark ! --mark 0xa00/0xe00 -m mark ! --mark 0x800/0xe00 -m mark ! --mark 0xf00/0xf00 -m comment --comment "cilium: host->any mark as from host" -j MARK --set-xmark 0xc00/0xf00',
    '-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "ingress-nginx/ingress-nginx-controller:https has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 31306 -j REJECT --reject-with icmp-port-unreachable',
    '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    '-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP',
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts -j DROP",
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "ns2/svc2:p80 health check node port" -m tcp --dport 30000 -j ACCEPT',
    '-A KUBE-SERVICES -d 10.2.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns has no endpoints" -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable',
    '-A KUBE-SERVICES -d 10.2.73.220/32 -p tcp -m comment --comment "ingress-nginx/ingress-nginx-controller:https has no endpoints" -m tcp --dport 443 -j REJECT --reject-with icmp-port-unreachable',
    "-P FORWARD DROP",
  ],
  nat: [
    '-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_nat" -j CILIUM_PRE_nat',
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT_nat" -j CILIUM_OUTPUT_nat',
    '-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A POSTROUTING -m comment --comment "\\"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain\\"" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT',
    '-A POSTROUTING -m comment --comment "ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT',
    "-A POSTROUTING -j SWIFT-POSTROUTING",
    '-A CILIUM_POST_nat -s 10.0.0.0/24 ! -d 10.0.0.0/24 ! -o cilium_+ -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE',
    '-A CILIUM_POST_nat -m mark --mark 0xa00/0xe00 -m comment --comment "exclude proxy return traffic from masquerade" -j ACCEPT',
    '-A CILIUM_POST_nat ! -s 10.0.0.0/24 ! -d 10.0.0.0/24 -o cilium_host -m comment --comment "cilium host->cluster masquerade" -j SNAT --to-source 10.0.0.96',
    '-A CILIUM_POST_nat -s 127.0.0.1/32 -o cilium_host -m comment --comment "cilium host->cluster from 127.0.0.1 masquerade" -j SNAT --to-source 10.0.0.96',
    '-A CILIUM_POST_nat -o cilium_host -m mark --mark 0xf00/0xf00 -m conntrack --ctstate DNAT -m comment --comment "hairpin traffic that originated from a local pod" -j SNAT --to-source 10.0.0.96',
    '-A IP-MASQ-AGENT -d 10.224.0.0/16 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN',
    '-A IP-MASQ-AGENT -d 10.224.0.0/12 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN',
    '-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE',
    "-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000",
    "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/x-tools-svc-1" -m tcp --dport 30080 -j KUBE-SVC-XXQFMBX2TZG6LPU6',
    '-A KUBE-NODEPORTS -d 127.0.0.0/8 -p tcp -m comment --comment "default/nginx" -m tcp --dport 30655 -m nfacct --nfacct-name  localhost_nps_accepted_pkts -j KUBE-EXT-2CMXP7HKUVJN7L6M',
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/nginx" -m tcp --dport 30655 -j KUBE-EXT-2CMXP7HKUVJN7L6M',
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-SEP-4NJI4U4OVD7ASSTN -s 10.0.0.52/32 -m comment --comment "default/x-tools-svc-1" -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-4NJI4U4OVD7ASSTN -p tcp -m comment --comment "default/x-tools-svc-1" -m tcp -j DNAT --to-destination 10.0.0.52:80',
    '-A KUBE-SEP-JFY262ZQRD3MRSBY -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 10.0.0.61:53',
    '-A KUBE-SEP-SXIVWICOYRO3J4NJ -p tcp -m comment --comment "ns1/svc1:p80" -m recent --set --name KUBE-SEP-SXIVWICOYRO3J4NJ --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.180.0.1:80',
    '-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU',
    '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y',
    '-A KUBE-SERVICES -d 172.17.0.241/32 -p tcp -m comment --comment "default/nginx loadbalancer IP" -m tcp --dport 80 -j KUBE-EXT-2CMXP7HKUVJN7L6M',
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    '-A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment "kube-system/kube-dns:dns-tcp" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-IMPQAXS4DSXOT6OW',
    '-A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment "kube-system/kube-dns:dns-tcp" -j KUBE-SEP-Q5DFUOU55OKTF7SL',
    '-A KUBE-SVC-XXQFMBX2TZG6LPU6 -p tcp -m comment --comment "default/x-tools-svc-1" -m tcp --dport 30080 -j KUBE-MARK-MASQ',
    '-A KUBE-SVC-2CMXP7HKUVJN7L6M -m comment --comment "default/nginx -> 10.244.1.5:80" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-IZW656N5ZXYN5BEC',
    '-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ',
    '-A KUBE-SVL-2CMXP7HKUVJN7L6M -m comment --comment "default/nginx -> 10.244.1.6:80" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-C4VXQDW52UV45WW3',
    '-A KUBE-SVL-2CMXP7HKUVJN7L6M -m comment --comment "default/nginx -> 10.244.1.7:80" -j KUBE-SEP-DST4PJJC54MIXJRG',
    '-A KUBE-EXT-2CMXP7HKUVJN7L6M -s 10.244.0.0/16 -m comment --comment "pod traffic for default/nginx external destinations" -j KUBE-SVC-2CMXP7HKUVJN7L6M',
    '-A KUBE-EXT-2CMXP7HKUVJN7L6M -m comment --comment "masquerade LOCAL traffic for default/nginx external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
    '-A KUBE-EXT-2CMXP7HKUVJN7L6M -m comment --comment "route LOCAL traffic for default/nginx external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-2CMXP7HKUVJN7L6M',
    "-A KUBE-EXT-2CMXP7HKUVJN7L6M -j KUBE-SVL-2CMXP7HKUVJN7L6M",
    '-A KUBE-EXT-W47NQ5DDJKUWFTVY -m comment --comment "masquerade traffic for default/nginx-mlb-l2-service external destinations" -j KUBE-MARK-MASQ',
    "-A KUBE-EXT-W47NQ5DDJKUWFTVY -j KUBE-SVC-W47NQ5DDJKUWFTVY",
    "-A SWIFT-POSTROUTING -s 240.1.2.0/24 -d 168.63.129.16/32 -p udp -m addrtype ! --dst-type LOCAL -m udp --dport 53 -j SNAT --to-source 10.0.0.4",
    "-A SWIFT-POSTROUTING -s 240.1.2.0/24 -d 169.254.169.254/32 -p tcp -m addrtype ! --dst-type LOCAL -m tcp --dport 80 -j SNAT --to-source 10.0.0.4",
  ],
  mangle: [
    '-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_mangle" -j CILIUM_PRE_mangle',
    '-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_mangle" -j CILIUM_POST_mangle',
    "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 80 -j DROP",
    "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 32526 -j DROP",
    '-A CILIUM_PRE_mangle -m socket --transparent -m mark ! --mark 0xe00/0xf00 -m comment --comment "cilium: any->pod redirect proxied traffic to host proxy" -j MARK --set-xmark 0x200/0xffffffff',
    '-A CILIUM_PRE_mangle -p tcp -m mark --mark 0xe9a40200 -m comment --comment "cilium: TPROXY to host cilium-dns-egress proxy" -j TPROXY --on-port 42217 --on-ip 127.0.0.1 --tproxy-mark 0x200/0xffffffff',
    '-A CILIUM_PRE_mangle -p udp -m mark --mark 0xe62d0200 -m comment --comment "cilium: TPROXY to host cilium-http-ingress proxy" -j TPROXY --on-port 11750 --on-ip 127.0.0.1 --tproxy-mark 0x200/0xffffffff',
    '-A CILIUM_PRE_mangle -i eth0 -m comment --comment "cilium: primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80',
    '-A CILIUM_PRE_mangle -i lxc+ -m comment --comment "cilium: primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80',
    "-N KUBE-IPTABLES-HINT",
    "-N KUBE-KUBELET-CANARY",
    "-N KUBE-PROXY-CANARY",
  ],
  raw: [
    '-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_raw" -j CILIUM_PRE_raw',
    '-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT_raw" -j CILIUM_OUTPUT_raw',
    '-A PREROUTING -d 169.254.10.10/32 -p udp -m comment --comment "localdns: skip conntrack" -m udp --dport 53 -j NOTRACK',
    '-A OUTPUT -d 169.254.10.11/32 -p tcp -m comment --comment "localdns: skip conntrack" -m tcp --dport 53 -j NOTRACK',
    '-A CILIUM_OUTPUT_raw -o lxc+ -m mark --mark 0xa00/0xfffffeff -m comment --comment "cilium: NOTRACK for proxy return traffic" -j CT --notrack',
    '-A CILIUM_OUTPUT_raw -o cilium_host -m mark --mark 0xa00/0xfffffeff -m comment --comment "cilium: NOTRACK for proxy return traffic" -j CT --notrack',
    '-A CILIUM_OUTPUT_raw -o lxc+ -m mark --mark 0x800/0xe00 -m comment --comment "cilium: NOTRACK for L7 proxy upstream traffic" -j CT --notrack',
    '-A CILIUM_PRE_raw -m mark --mark 0x200/0xf00 -m comment --comment "cilium: NOTRACK for proxy traffic" -j CT --notrack',
  ],
  security: [
    "-A OUTPUT -d 168.63.129.16/32 -p tcp -m tcp --dport 53 -j ACCEPT",
    "-A OUTPUT -d 168.63.129.16/32 -p tcp -m owner --uid-owner 0 -j ACCEPT",
    "-A OUTPUT -d 168.63.129.16/32 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP",
  ],
};

/** Look-alikes of allowed rules that a person could add; each one must be flagged. */
const LOOK_ALIKES_V4: Partial<Record<TableName, string[]>> = {
  filter: [
    "-P INPUT DROP",
    "-N DOCKER",
    "-A INPUT -j ACCEPT",
    '-A INPUT -m comment --comment "cilium: ACCEPT for proxy traffic" -j ACCEPT',
    '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "kubernetes service portals" -j ACCEPT',
    "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 80 -j ACCEPT",
    "-A KUBE-FORWARD -j ACCEPT",
    '-A CILIUM_FORWARD -i eth0 -m comment --comment "cilium: cluster->any on lxc+ forward accept" -j ACCEPT',
    '-A KUBE-SERVICES -d 10.0.0.10/32 -p udp -m comment --comment "dns" -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable',
  ],
  nat: [
    "-N KUBE-SVC-SHORT",
    "-A KUBE-SVC-SHORT -j KUBE-MARK-MASQ",
    "-A KUBE-SERVICES -d 10.0.0.1/32 -p tcp -m tcp --dport 22 -j DNAT --to-destination 192.0.2.1:22",
    '-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns" -j DNAT --to-destination 192.0.2.53:53',
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/nginx" -m tcp --dport 30655 -j ACCEPT',
    "-A KUBE-POSTROUTING -j MASQUERADE",
    "-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE",
    '-A IP-MASQ-AGENT -d 0.0.0.0/0 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j ACCEPT',
  ],
  mangle: [
    "-A PREROUTING -j MARK --set-xmark 0x200/0xffffffff",
    '-A CILIUM_PRE_mangle -p tcp -m comment --comment "cilium: TPROXY to host cilium-dns-egress proxy" -j TPROXY --on-port 42133 --on-ip 127.0.0.1 --tproxy-mark 0x200/0xffffffff',
  ],
  raw: ["-A PREROUTING -j CT --notrack", "-A CILIUM_PRE_raw -j CT --notrack"],
  security: ["-A OUTPUT -d 168.63.129.16/32 -p tcp -j ACCEPT"],
};

const LOOK_ALIKES_V6: Partial<Record<TableName, string[]>> = {
  filter: [
    "-A INPUT -s 2001:db8::/32 -j ACCEPT",
    "-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 80 -j DROP",
    "-A INPUT -j KUBE-FIREWALL",
  ],
  nat: [
    '-A KUBE-SERVICES -d 10.0.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU',
  ],
  security: ["-A OUTPUT -d 2001:db8::1/128 -p tcp -m owner --uid-owner 0 -j ACCEPT"],
};

function asFlagged(lines: Partial<Record<TableName, string[]>>): string[] {
  return Object.entries(lines).flatMap(([table, rules]) => rules.map((r) => `${table}: ${r}`))
    .sort();
}

Deno.test("rules seen on real AKS and Cilium nodes are accepted", async () => {
  const { code, report } = await check(dumpOf(SEEN_ON_NODES), dumpOf({}));
  assert.deepEqual(flagged(report, "ipv4"), []);
  assert.equal(code, 0);
});

Deno.test("look-alikes of allowed rules are flagged, every one of them", async () => {
  const { code, report } = await check(dumpOf(LOOK_ALIKES_V4), dumpOf(LOOK_ALIKES_V6));
  assert.deepEqual(flagged(report, "ipv4"), asFlagged(LOOK_ALIKES_V4));
  assert.deepEqual(flagged(report, "ipv6"), asFlagged(LOOK_ALIKES_V6));
  assert.equal(code, 1);
});

/** The checked lines of a dump per table, as the monitor derives them. */
function linesPerTable(dump: string): Map<string, string[]> {
  const tables = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of dump.split("\n")) {
    if (line.startsWith("*")) tables.set(line.slice(1), current = []);
    else if (line.startsWith("-A ")) current.push(line);
    else if (line.startsWith(":")) {
      const [chain, policy] = line.slice(1).split(" ");
      current.push(policy === "-" ? `-N ${chain}` : `-P ${chain} ${policy}`);
    }
  }
  return tables;
}

Deno.test({
  name: "Go's regexp compiles every shipped pattern and flags exactly the user rules too",
  ...requires({ commands: ["go"] }),
  async fn() {
    for (const family of ["ipv4", "ipv6"] as const) {
      const generated = generateRuleset({ services: 300, family, userRules: true, seed: 31 });
      const tables = linesPerTable(generated.dump);
      const read = (file: string) =>
        Deno.readTextFileSync(`${PATTERNS}${family}/${file}`).split("\n").filter((l) => l !== "");
      const global = read("global");
      const cases: (OracleCase & { table: string })[] = [];
      for (const [table, lines] of tables) {
        for (const pattern of [...global, ...read(table)]) {
          cases.push({ pattern, inputs: lines, table });
        }
      }
      const verdicts = await askGo(cases);
      const accepted = new Set<string>();
      verdicts.forEach((verdict, i) => {
        assert.equal(verdict.error, null, `${family}: Go rejects ${cases[i].pattern}`);
        assert.equal(verdict.divergence, null, cases[i].pattern);
        verdict.matches.forEach((hit, j) => {
          if (hit) accepted.add(`${cases[i].table}: ${cases[i].inputs[j]}`);
        });
      });
      const rejected = [...tables].flatMap(([table, lines]) =>
        lines.map((line) => `${table}: ${line}`).filter((line) => !accepted.has(line))
      );
      const planted = generated.userRules.map((u) => `${u.table}: ${u.rule}`);
      assert.deepEqual(rejected.sort(), planted.sort());
    }
  },
});
