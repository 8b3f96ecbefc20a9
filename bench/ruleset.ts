/**
 * Realistic `iptables-save` dumps of a Cilium-managed AKS node, at any number of
 * Kubernetes services, for benchmarks and for testing the shipped allowlists.
 *
 * Every rule is written exactly as `iptables-save` prints it after the owning component
 * installed it (normalised option order, `/32` host masks, `--set-xmark` for `--or-mark`,
 * quoted comments, statistic probabilities as the kernel stores them), so a dump loaded
 * with `iptables-restore` saves back unchanged. Where each rule comes from is described in
 * `patterns/README.md`; the components modelled are kube-proxy (iptables mode), kubelet,
 * Cilium (AKS configuration: native routing, endpoint routes, no iptables masquerade),
 * azure-ip-masq-agent-v2, AgentBaker's WireServer block and the WALinuxAgent firewall.
 *
 * Run: `deno run bench/ruleset.ts --services 5000 --family ipv4 [--user-rules] [--seed N]`
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import type { Family, TableName } from "../src/iptables/types.ts";

/** What to generate. */
export interface RulesetOptions {
  /** Number of Kubernetes service ports on the cluster (each gets kube-proxy rules). */
  services: number;
  family: Family;
  /** Seed of the deterministic generator; the same options give the same dump. */
  seed?: number;
  /** Plant a few typical hand-made user rules that an allowlist must flag. */
  userRules?: boolean;
}

/** One planted user rule, as `iptables -t TABLE -S` prints it. */
export interface PlantedRule {
  table: TableName;
  rule: string;
}

/** A generated dump and what a test needs to know about it. */
export interface GeneratedRuleset {
  /** The `iptables-save` text, loadable with `iptables-restore` (both backends). */
  dump: string;
  /** The planted user rules (empty without `userRules`), each exactly once in `dump`. */
  userRules: PlantedRule[];
  /** Number of `-A` rules in the dump. */
  ruleCount: number;
  /** Number of lines the monitor checks: `-P`, `-N` (chain declarations) and `-A`. */
  lineCount: number;
}

// ---------------------------------------------------------------------------------------
// Deterministic randomness and kube-proxy's chain-name hash

/** A small seeded PRNG (splitmix32), so dumps are reproducible from the seed alone. */
class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 0x100000000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * The 16-character suffix kube-proxy gives its per-service and per-endpoint chains:
 * base32 (standard alphabet) of the SHA-256 of the input, truncated. Exported so tests
 * can check it against chain names seen on real nodes.
 */
export function kubeProxyHash(input: string): string {
  const digest = createHash("sha256").update(input).digest();
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (let i = 0; out.length < 16; i++) {
    buffer = (buffer << 8) | digest[i];
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      bits -= 5;
      out += BASE32[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/**
 * The `--probability` value `iptables-save` prints for kube-proxy's `1/n`: kube-proxy
 * passes `%0.10f`, the statistic match stores it as a fraction of 2^31, and the save
 * code prints that back with eleven decimals.
 */
function statisticProbability(n: number): string {
  const requested = Number((1 / n).toFixed(10));
  const stored = Math.round(requested * 0x80000000);
  return (stored / 0x80000000).toFixed(11);
}

// ---------------------------------------------------------------------------------------
// Addressing of the modelled node and cluster

/** The addresses of one family: node, cluster ranges and how addresses are printed. */
interface Addressing {
  family: Family;
  /** Suffix `iptables-save` prints for a single address. */
  host: string;
  nodeIp: string;
  nodeSubnet: string;
  vnet: string;
  podCidr: string;
  serviceCidr: string;
  apiServer: string;
  rejectWith: string;
  /** `DNAT --to-destination` / comment form of an endpoint. */
  endpoint(ip: string, port: number): string;
  /** A pod address; `local` ones are in this node's share of the pod range. */
  podIp(random: Random, local: boolean): string;
  /** The n-th service cluster IP (n >= 0), never one of the well-known ones. */
  clusterIp(n: number): string;
  kubernetesClusterIp: string;
  dnsClusterIp: string;
  loadBalancerIp(n: number): string;
  externalIp(n: number): string;
  sourceRanges: string[];
  /** The last `KUBE-SERVICES` rule's destination clause. */
  nodePortExclusion: string;
}

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** RFC 5952 text of eight 16-bit groups, as glibc's `inet_ntop` prints it. */
function ipv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLength < 2) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

const IPV4_ADDRESSING: Addressing = {
  family: "ipv4",
  host: "/32",
  nodeIp: "10.224.0.4",
  nodeSubnet: "10.224.0.0/16",
  vnet: "10.224.0.0/12",
  podCidr: "10.244.0.0/16",
  serviceCidr: "10.0.0.0/16",
  apiServer: "198.19.255.254",
  rejectWith: "icmp-port-unreachable",
  endpoint: (ip, port) => `${ip}:${port}`,
  podIp(random, local) {
    const third = local ? 3 : random.int(256);
    return `10.244.${third}.${1 + random.int(254)}`;
  },
  // 10.0.0.0/16 from 10.0.0.11 on: 10.0.0.1 and 10.0.0.10 are the well-known services.
  clusterIp: (n) => ipv4((10 << 24) + 11 + n),
  kubernetesClusterIp: "10.0.0.1",
  dnsClusterIp: "10.0.0.10",
  // 198.18.0.0/15 is reserved for benchmarks (RFC 2544), so no real address is named.
  loadBalancerIp: (n) => ipv4((198 << 24) + (18 << 16) + 1 + n),
  externalIp: (n) => ipv4((198 << 24) + (19 << 16) + 1 + n),
  sourceRanges: ["203.0.113.0/24", "198.51.100.0/25"],
  nodePortExclusion: "",
};

const IPV6_ADDRESSING: Addressing = {
  family: "ipv6",
  host: "/128",
  nodeIp: "fd00:10:224::4",
  nodeSubnet: "fd00:10:224::/64",
  vnet: "fd00:10::/32",
  podCidr: "fd12:3456:789a::/64",
  serviceCidr: "fd12:3456:789a:1::/108",
  apiServer: "2001:db8:a5::1",
  rejectWith: "icmp6-port-unreachable",
  endpoint: (ip, port) => `[${ip}]:${port}`,
  podIp(random, local) {
    const high = local ? 3 : 1 + random.int(0xfff);
    return ipv6([0xfd12, 0x3456, 0x789a, 0, 0, 0, high, 1 + random.int(0xfffe)]);
  },
  // fd12:3456:789a:1::/108; ::1 and ::a are the well-known services.
  clusterIp(n) {
    const k = 11 + n;
    return ipv6([0xfd12, 0x3456, 0x789a, 1, 0, 0, (k >>> 16) & 0xf, k & 0xffff]);
  },
  kubernetesClusterIp: "fd12:3456:789a:1::1",
  dnsClusterIp: "fd12:3456:789a:1::a",
  loadBalancerIp: (n) => ipv6([0x2001, 0xdb8, 0x4c42, 0, 0, 0, (n + 1) >>> 16, (n + 1) & 0xffff]),
  externalIp: (n) => ipv6([0x2001, 0xdb8, 0xe1, 0, 0, 0, (n + 1) >>> 16, (n + 1) & 0xffff]),
  sourceRanges: ["2001:db8:100::/48"],
  nodePortExclusion: "! -d ::1/128 ",
};

// ---------------------------------------------------------------------------------------
// The Kubernetes services the node sees

interface Endpoint {
  ip: string;
  port: number;
  /** Runs on this node (matters for externalTrafficPolicy: Local). */
  local: boolean;
}

interface ServicePort {
  /** kube-proxy's `ServicePortName` string: `namespace/name` or `namespace/name:port`. */
  portName: string;
  protocol: "tcp" | "udp";
  port: number;
  clusterIp: string;
  endpoints: Endpoint[];
  nodePort: number;
  healthCheckNodePort: number;
  loadBalancerIps: string[];
  externalIps: string[];
  sourceRanges: string[];
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  sessionAffinity: boolean;
}

const NAMESPACES = [
  "default",
  "payments",
  "orders",
  "inventory",
  "checkout",
  "search",
  "catalog",
  "identity",
  "billing",
  "shipping",
  "analytics",
  "monitoring",
  "logging",
  "ingress-nginx",
  "cert-manager",
  "argocd",
  "data-platform",
  "ml-serving",
  "web",
  "team-a",
] as const;
const NAME_WORDS = [
  "api",
  "web",
  "worker",
  "cache",
  "db",
  "queue",
  "frontend",
  "backend",
  "gateway",
  "auth",
  "search",
  "metrics",
  "redis",
  "postgres",
  "kafka",
  "grafana",
  "ingest",
  "render",
  "notify",
  "ledger",
] as const;
const NAME_SUFFIXES = ["svc", "service", "internal", "public", "v2", "primary"] as const;
const TCP_PORT_NAMES = ["http", "http", "http", "", "", "https", "grpc", "metrics", "tcp-app"];
const SERVICE_PORTS = [80, 80, 80, 443, 8080, 8443, 9090, 5432, 6379, 3306, 9092, 3000, 5000];
const TARGET_PORTS = [8080, 8080, 80, 3000, 5000, 8000, 9090, 8443, 5432, 6379, 9092, 50051];
const NODE_PORT_MIN = 30000;
const NODE_PORT_COUNT = 2768;
/** kube-proxy drops per-endpoint comments above this many endpoints ("large cluster mode"). */
const LARGE_CLUSTER_ENDPOINTS = 1000;
/** Cluster IPs come from one /16 (IPv4) or a /108 (IPv6); stay well inside it. */
const MAX_SERVICES = 60000;

/** Which endpoints run on this node: by chance (about 1 in 20), the first one, or none. */
type Locality = "random" | "some" | "none";

/** How one user service port looks to kube-proxy. */
interface Shape {
  kind: "cluster" | "nodeport" | "loadbalancer" | "externalip";
  endpoints: number;
  local?: Locality;
  udp?: boolean;
  externalLocal?: boolean;
  firewall?: boolean;
  affinity?: boolean;
  internalLocal?: boolean;
}

/** One of each shape kube-proxy renders differently. */
const SHOWCASE: readonly Shape[] = [
  { kind: "nodeport", endpoints: 2 },
  { kind: "loadbalancer", endpoints: 3 },
  { kind: "loadbalancer", endpoints: 2, externalLocal: true, local: "some" },
  { kind: "loadbalancer", endpoints: 2, externalLocal: true, local: "none" },
  { kind: "loadbalancer", endpoints: 2, firewall: true },
  { kind: "externalip", endpoints: 2 },
  { kind: "cluster", endpoints: 0 },
  { kind: "nodeport", endpoints: 0 },
  { kind: "loadbalancer", endpoints: 0 },
  { kind: "externalip", endpoints: 0 },
  { kind: "cluster", endpoints: 3, affinity: true },
  { kind: "cluster", endpoints: 2, internalLocal: true, local: "some" },
  { kind: "cluster", endpoints: 2, internalLocal: true, local: "none" },
  { kind: "cluster", endpoints: 2, udp: true },
];

/**
 * A service drawn from the mix of a busy cluster: most have two endpoints, some three,
 * some none (scaled to zero); most are ClusterIP, some NodePort or LoadBalancer.
 */
function randomShape(random: Random): Shape {
  const roll = random.next();
  const count = roll < 0.18 ? 0 : roll < 0.94 ? 2 : 3;
  const kind = random.next();
  const shape: Shape = {
    kind: kind < 0.05
      ? "loadbalancer"
      : kind < 0.13
      ? "nodeport"
      : kind < 0.134
      ? "externalip"
      : "cluster",
    endpoints: count,
    udp: random.chance(0.04),
  };
  if (shape.kind === "loadbalancer") {
    shape.externalLocal = random.chance(0.4);
    shape.firewall = random.chance(0.2);
  }
  shape.affinity = count > 0 && random.chance(0.02);
  shape.internalLocal = shape.kind === "cluster" && random.chance(0.005);
  return shape;
}

function endpoints(
  random: Random,
  a: Addressing,
  count: number,
  port: number,
  locality: Locality = "random",
): Endpoint[] {
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  while (out.length < count) {
    const local = locality === "random"
      ? random.chance(0.05)
      : locality === "some" && out.length === 0;
    const ip = a.podIp(random, local);
    if (seen.has(ip)) continue;
    seen.add(ip);
    out.push({ ip, port, local });
  }
  return out;
}

/** A service port with no endpoints and no external exposure yet. */
function basicService(
  portName: string,
  protocol: "tcp" | "udp",
  port: number,
  clusterIp: string,
): ServicePort {
  return {
    portName,
    protocol,
    port,
    clusterIp,
    endpoints: [],
    nodePort: 0,
    healthCheckNodePort: 0,
    loadBalancerIps: [],
    externalIps: [],
    sourceRanges: [],
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    sessionAffinity: false,
  };
}

/** The services of an AKS cluster: a few system ones, then a mix of user services. */
function makeServices(random: Random, a: Addressing, count: number): ServicePort[] {
  const services: ServicePort[] = [];
  const dnsPods = endpoints(random, a, 2, 53);
  const system: ServicePort[] = [
    {
      ...basicService("default/kubernetes:https", "tcp", 443, a.kubernetesClusterIp),
      endpoints: [{ ip: a.apiServer, port: 443, local: false }],
    },
    { ...basicService("kube-system/kube-dns:dns", "udp", 53, a.dnsClusterIp), endpoints: dnsPods },
    {
      ...basicService("kube-system/kube-dns:dns-tcp", "tcp", 53, a.dnsClusterIp),
      endpoints: dnsPods,
    },
  ];
  let nextClusterIp = 0;
  const metricsIp = a.clusterIp(nextClusterIp++);
  system.push({
    ...basicService("kube-system/metrics-server", "tcp", 443, metricsIp),
    endpoints: endpoints(random, a, 2, 4443),
  });
  const gatekeeperIp = a.clusterIp(nextClusterIp++);
  system.push({
    ...basicService(
      "gatekeeper-system/gatekeeper-webhook-service:https-webhook-server",
      "tcp",
      443,
      gatekeeperIp,
    ),
    endpoints: endpoints(random, a, 2, 8443),
  });
  services.push(...system.slice(0, count));

  // Cluster IPs are handed out in a shuffled order, as the apiserver's allocator does.
  const stride = 7919; // prime, coprime with the 65k range, so no address repeats
  const clusterIpSlot = (n: number) => a.clusterIp(nextClusterIp + ((n * stride) % 65000));
  let nodePorts = 0;
  let loadBalancers = 0;
  let externalIps = 0;
  const nextNodePort = () => NODE_PORT_MIN + ((nodePorts++ * 1013) % NODE_PORT_COUNT);

  for (let i = services.length; i < count; i++) {
    // The first user services show every shape once, so small dumps cover them all.
    const showcase = i - system.length;
    const shape = showcase < SHOWCASE.length ? SHOWCASE[showcase] : randomShape(random);
    const namespace = random.pick(NAMESPACES);
    const name = `${random.pick(NAME_WORDS)}-${random.pick(NAME_SUFFIXES)}-${i}`;
    const udp = shape.udp === true;
    const portLabel = udp ? random.pick(["", "udp", "syslog"]) : random.pick(TCP_PORT_NAMES);
    const portName = portLabel === ""
      ? `${namespace}/${name}`
      : `${namespace}/${name}:${portLabel}`;
    const port = udp ? random.pick([514, 8125, 6831]) : random.pick(SERVICE_PORTS);
    const service = basicService(portName, udp ? "udp" : "tcp", port, clusterIpSlot(i));
    service.endpoints = endpoints(
      random,
      a,
      shape.endpoints,
      random.pick(TARGET_PORTS),
      shape.local ?? "random",
    );
    const external = shape.kind === "nodeport" || shape.kind === "loadbalancer";
    if (external && nodePorts < NODE_PORT_COUNT - 2) {
      service.nodePort = nextNodePort();
      if (shape.kind === "loadbalancer") {
        service.loadBalancerIps = [a.loadBalancerIp(loadBalancers++)];
        service.externalPolicyLocal = shape.externalLocal === true;
        if (service.externalPolicyLocal) service.healthCheckNodePort = nextNodePort();
        if (shape.firewall) service.sourceRanges = a.sourceRanges;
      }
    } else if (shape.kind === "externalip") {
      service.externalIps = [a.externalIp(externalIps++)];
    }
    service.sessionAffinity = shape.affinity === true;
    service.internalPolicyLocal = shape.internalLocal === true;
    services.push(service);
  }
  return services;
}

// ---------------------------------------------------------------------------------------
// Tables as iptables-save prints them

const BUILTIN_CHAINS: Record<TableName, readonly string[]> = {
  raw: ["PREROUTING", "OUTPUT"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  security: ["INPUT", "FORWARD", "OUTPUT"],
};
/** The order `iptables-nft-save` printed the tables in on a test node. */
const DUMP_TABLE_ORDER: readonly TableName[] = ["mangle", "raw", "security", "filter", "nat"];

/**
 * One table being filled: user chains are printed sorted (as `iptables-save` does), and
 * rules grouped per chain, built-in chains first, in insertion order within a chain.
 */
class TableBuilder {
  readonly name: TableName;
  readonly #chains = new Map<string, string[]>();

  constructor(name: TableName) {
    this.name = name;
    for (const chain of BUILTIN_CHAINS[name]) this.#chains.set(chain, []);
  }

  chain(name: string): void {
    if (!this.#chains.has(name)) this.#chains.set(name, []);
  }

  /** Appends `-A chain spec`; `spec` is everything after the chain name. */
  append(chain: string, spec: string): void {
    this.#rules(chain).push(spec);
  }

  /** Inserts at the top of the chain, like `iptables -I`. */
  insert(chain: string, spec: string): void {
    this.#rules(chain).unshift(spec);
  }

  #rules(chain: string): string[] {
    const rules = this.#chains.get(chain);
    if (rules === undefined) throw new Error(`chain ${this.name}/${chain} not declared`);
    return rules;
  }

  /** Renders the table; `counts` accumulates the `-A` and checked-line totals. */
  render(out: string[], counts: { rules: number; lines: number }): void {
    const builtins = BUILTIN_CHAINS[this.name];
    const users = [...this.#chains.keys()].filter((c) => !builtins.includes(c)).sort();
    out.push(`*${this.name}`);
    for (const chain of builtins) out.push(`:${chain} ACCEPT [0:0]`);
    for (const chain of users) out.push(`:${chain} - [0:0]`);
    counts.lines += builtins.length + users.length;
    for (const chain of [...builtins, ...users]) {
      const rules = this.#rules(chain);
      for (const spec of rules) out.push(spec === "" ? `-A ${chain}` : `-A ${chain} ${spec}`);
      counts.rules += rules.length;
      counts.lines += rules.length;
    }
    out.push("COMMIT");
  }
}

type Tables = Record<TableName, TableBuilder>;

/** A filter-table verdict for a service without usable endpoints. */
interface Verdict {
  comment: string;
  jump: string;
}

function quote(comment: string): string {
  return `-m comment --comment "${comment}"`;
}

// ---------------------------------------------------------------------------------------
// Components

/** AgentBaker's WireServer (168.63.129.16) block and WALinuxAgent's firewall; IPv4 only. */
function addAksHost(t: Tables, a: Addressing): void {
  if (a.family !== "ipv4") return;
  // block_wireserver.sh runs `iptables -I FORWARD` for 80 then 32526, so 32526 is on top.
  // The same two rules are listed in mangle FORWARD by AKS's own allowlists.
  for (const table of [t.filter, t.mangle]) {
    table.append("FORWARD", "-d 168.63.129.16/32 -p tcp -m tcp --dport 32526 -j DROP");
    table.append("FORWARD", "-d 168.63.129.16/32 -p tcp -m tcp --dport 80 -j DROP");
  }
  const wire = "-d 168.63.129.16/32 -p tcp";
  t.security.append("OUTPUT", `${wire} -m tcp --dport 53 -j ACCEPT`);
  t.security.append("OUTPUT", `${wire} -m owner --uid-owner 0 -j ACCEPT`);
  t.security.append("OUTPUT", `${wire} -m conntrack --ctstate INVALID,NEW -j DROP`);
}

/** kubelet's chains: the backend hint, the canaries, and the IPv4 localnet firewall. */
function addKubelet(t: Tables, a: Addressing): void {
  t.mangle.chain("KUBE-IPTABLES-HINT");
  for (const table of [t.mangle, t.nat, t.filter]) table.chain("KUBE-KUBELET-CANARY");
  if (a.family !== "ipv4") return;
  t.filter.chain("KUBE-FIREWALL");
  t.filter.append("INPUT", "-j KUBE-FIREWALL");
  t.filter.append("OUTPUT", "-j KUBE-FIREWALL");
  t.filter.append(
    "KUBE-FIREWALL",
    `! -s 127.0.0.0/8 -d 127.0.0.0/8 ${
      quote("block incoming localnet connections")
    } -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
  );
}

/** kube-proxy's jump rules from the built-in chains (it prepends them, so they lead). */
function addKubeProxyJumps(t: Tables): void {
  const lbFirewall = `-m conntrack --ctstate NEW ${
    quote("kubernetes load balancer firewall")
  } -j KUBE-PROXY-FIREWALL`;
  const external = `-m conntrack --ctstate NEW ${
    quote("kubernetes externally-visible service portals")
  } -j KUBE-EXTERNAL-SERVICES`;
  const services = `-m conntrack --ctstate NEW ${
    quote("kubernetes service portals")
  } -j KUBE-SERVICES`;
  t.filter.append("INPUT", lbFirewall);
  t.filter.append("INPUT", `${quote("kubernetes health check service ports")} -j KUBE-NODEPORTS`);
  t.filter.append("INPUT", external);
  t.filter.append("FORWARD", lbFirewall);
  t.filter.append("FORWARD", `${quote("kubernetes forwarding rules")} -j KUBE-FORWARD`);
  t.filter.append("FORWARD", services);
  t.filter.append("FORWARD", external);
  t.filter.append("OUTPUT", lbFirewall);
  t.filter.append("OUTPUT", services);
  const portals = `${quote("kubernetes service portals")} -j KUBE-SERVICES`;
  t.nat.append("PREROUTING", portals);
  t.nat.append("OUTPUT", portals);
  t.nat.append("POSTROUTING", `${quote("kubernetes postrouting rules")} -j KUBE-POSTROUTING`);
}

/** The rules kube-proxy's iptables proxier writes for the services (its syncProxyRules). */
function addKubeProxyRules(t: Tables, a: Addressing, services: ServicePort[]): void {
  const { filter, nat } = t;
  for (const table of [t.mangle, nat, filter]) table.chain("KUBE-PROXY-CANARY");
  for (const c of ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS"]) {
    filter.chain(c);
  }
  filter.chain("KUBE-PROXY-FIREWALL");
  for (const c of ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]) {
    nat.chain(c);
  }
  nat.append("KUBE-POSTROUTING", "-m mark ! --mark 0x4000/0x4000 -j RETURN");
  nat.append("KUBE-POSTROUTING", "-j MARK --set-xmark 0x4000/0x0");
  nat.append(
    "KUBE-POSTROUTING",
    `${quote("kubernetes service traffic requiring SNAT")} -j MASQUERADE --random-fully`,
  );
  nat.append("KUBE-MARK-MASQ", "-j MARK --set-xmark 0x4000/0x4000");

  const totalEndpoints = services.reduce((sum, s) => sum + s.endpoints.length, 0);
  const largeCluster = totalEndpoints > LARGE_CLUSTER_ENDPOINTS;
  const endpointComment = (text: string) => largeCluster ? "" : `${quote(text)} `;
  const reject = `REJECT --reject-with ${a.rejectWith}`;

  for (const s of services) {
    const p = s.protocol;
    const name = s.portName;
    const hash = kubeProxyHash(name + p);
    const svcChain = `KUBE-SVC-${hash}`;
    const svlChain = `KUBE-SVL-${hash}`;
    const extChain = `KUBE-EXT-${hash}`;
    const fwChain = `KUBE-FW-${hash}`;
    const dst = (ip: string) => `-d ${ip}${a.host} -p ${p}`;
    const dport = (port: number) => `-m ${p} --dport ${port}`;
    const hasEndpoints = s.endpoints.length > 0;
    const local = s.endpoints.filter((e) => e.local);
    const hasInternal = hasEndpoints && (!s.internalPolicyLocal || local.length > 0);
    const hasExternal = hasEndpoints && (!s.externalPolicyLocal || local.length > 0);
    const internalChain = s.internalPolicyLocal ? svlChain : svcChain;
    const externalPolicyChain = s.externalPolicyLocal ? svlChain : svcChain;
    const accessible = s.nodePort !== 0 || s.loadBalancerIps.length > 0 || s.externalIps.length > 0;
    const usesExt = hasEndpoints && accessible;
    const usesFw = hasEndpoints && s.loadBalancerIps.length > 0 && s.sourceRanges.length > 0;
    const usesCluster = hasEndpoints &&
      (!s.internalPolicyLocal || (accessible && !s.externalPolicyLocal));
    const usesLocal = local.length > 0 &&
      (s.internalPolicyLocal || (accessible && s.externalPolicyLocal));
    const reachable = usesCluster ? s.endpoints : usesLocal ? local : [];
    // What the filter table does with traffic that has nowhere to go.
    const noEndpoints: Verdict = { comment: quote(`${name} has no endpoints`), jump: reject };
    const noLocal: Verdict = { comment: quote(`${name} has no local endpoints`), jump: "DROP" };
    const internalVerdict = hasEndpoints ? noLocal : noEndpoints;
    const externalVerdict = hasEndpoints ? noLocal : noEndpoints;

    // Capture the cluster IP.
    if (hasInternal) {
      nat.append(
        "KUBE-SERVICES",
        `${dst(s.clusterIp)} ${quote(`${name} cluster IP`)} ${dport(s.port)} -j ${internalChain}`,
      );
    } else {
      const v = internalVerdict;
      filter.append(
        "KUBE-SERVICES",
        `${dst(s.clusterIp)} ${v.comment} ${dport(s.port)} -j ${v.jump}`,
      );
    }
    for (const ip of s.externalIps) {
      if (hasEndpoints) {
        nat.append(
          "KUBE-SERVICES",
          `${dst(ip)} ${quote(`${name} external IP`)} ${dport(s.port)} -j ${extChain}`,
        );
      }
      if (!hasExternal) {
        const f = externalVerdict;
        filter.append(
          "KUBE-EXTERNAL-SERVICES",
          `${dst(ip)} ${f.comment} ${dport(s.port)} -j ${f.jump}`,
        );
      }
    }
    for (const ip of s.loadBalancerIps) {
      if (hasEndpoints) {
        nat.append(
          "KUBE-SERVICES",
          `${dst(ip)} ${quote(`${name} loadbalancer IP`)} ${dport(s.port)} -j ${
            usesFw ? fwChain : extChain
          }`,
        );
      }
      if (usesFw) {
        filter.append(
          "KUBE-PROXY-FIREWALL",
          `${dst(ip)} ${quote(`${name} traffic not accepted by ${fwChain}`)} ${
            dport(s.port)
          } -j DROP`,
        );
      }
    }
    if (!hasExternal) {
      for (const ip of s.loadBalancerIps) {
        const f = externalVerdict;
        filter.append(
          "KUBE-EXTERNAL-SERVICES",
          `${dst(ip)} ${f.comment} ${dport(s.port)} -j ${f.jump}`,
        );
      }
    }
    if (s.nodePort !== 0) {
      if (hasEndpoints) {
        nat.append(
          "KUBE-NODEPORTS",
          `-p ${p} ${quote(name)} ${dport(s.nodePort)} -j ${extChain}`,
        );
      }
      if (!hasExternal) {
        const f = externalVerdict;
        filter.append(
          "KUBE-EXTERNAL-SERVICES",
          `-p ${p} ${f.comment} -m addrtype --dst-type LOCAL ${dport(s.nodePort)} -j ${f.jump}`,
        );
      }
    }
    if (s.healthCheckNodePort !== 0) {
      filter.append(
        "KUBE-NODEPORTS",
        `-p tcp ${
          quote(`${name} health check node port`)
        } -m tcp --dport ${s.healthCheckNodePort} -j ACCEPT`,
      );
    }

    // Internal traffic: masquerade what does not come from a pod.
    if (hasInternal) {
      nat.chain(internalChain);
      nat.append(
        internalChain,
        `! -s ${a.podCidr} ${dst(s.clusterIp)} ${quote(`${name} cluster IP`)} ${
          dport(s.port)
        } -j KUBE-MARK-MASQ`,
      );
    }
    if (usesExt) {
      nat.chain(extChain);
      if (!s.externalPolicyLocal) {
        nat.append(
          extChain,
          `${quote(`masquerade traffic for ${name} external destinations`)} -j KUBE-MARK-MASQ`,
        );
      } else {
        nat.append(
          extChain,
          `-s ${a.podCidr} ${
            quote(`pod traffic for ${name} external destinations`)
          } -j ${svcChain}`,
        );
        nat.append(
          extChain,
          `${
            quote(`masquerade LOCAL traffic for ${name} external destinations`)
          } -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
        );
        nat.append(
          extChain,
          `${
            quote(`route LOCAL traffic for ${name} external destinations`)
          } -m addrtype --src-type LOCAL -j ${svcChain}`,
        );
      }
      if (hasExternal) nat.append(extChain, `-j ${externalPolicyChain}`);
    }
    if (usesFw) {
      nat.chain(fwChain);
      for (const range of s.sourceRanges) {
        nat.append(fwChain, `-s ${range} ${quote(`${name} loadbalancer IP`)} -j ${extChain}`);
      }
      nat.append(
        fwChain,
        quote(`other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL`),
      );
    }

    const writeEndpointJumps = (chain: string, eps: Endpoint[]) => {
      nat.chain(chain);
      const sep = (e: Endpoint) => `KUBE-SEP-${kubeProxyHash(name + p + a.endpoint(e.ip, e.port))}`;
      if (s.sessionAffinity) {
        for (const e of eps) {
          nat.append(
            chain,
            `${endpointComment(`${name} -> ${a.endpoint(e.ip, e.port)}`)}-m recent --rcheck ` +
              `--seconds 10800 --reap --name ${sep(e)} --mask ${recentMask(a)} --rsource -j ${
                sep(e)
              }`,
          );
        }
      }
      eps.forEach((e, i) => {
        const statistic = i < eps.length - 1
          ? `-m statistic --mode random --probability ${statisticProbability(eps.length - i)} `
          : "";
        nat.append(
          chain,
          `${endpointComment(`${name} -> ${a.endpoint(e.ip, e.port)}`)}${statistic}-j ${sep(e)}`,
        );
      });
    };
    if (usesCluster) writeEndpointJumps(svcChain, s.endpoints);
    if (usesLocal) writeEndpointJumps(svlChain, local);

    // Per-endpoint chains: masquerade hairpin traffic, then DNAT.
    {
      for (const e of reachable) {
        const chain = `KUBE-SEP-${kubeProxyHash(name + p + a.endpoint(e.ip, e.port))}`;
        nat.chain(chain);
        nat.append(chain, `-s ${e.ip}${a.host} ${endpointComment(name)}-j KUBE-MARK-MASQ`);
        const affinity = s.sessionAffinity
          ? `-m recent --set --name ${chain} --mask ${recentMask(a)} --rsource `
          : "";
        nat.append(
          chain,
          `-p ${p} ${endpointComment(name)}${affinity}-m ${p} -j DNAT --to-destination ${
            a.endpoint(e.ip, e.port)
          }`,
        );
      }
    }
  }

  nat.append(
    "KUBE-SERVICES",
    `${a.nodePortExclusion}${
      quote("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    } -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
  );
  filter.append("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP");
  filter.append(
    "KUBE-FORWARD",
    `${quote("kubernetes forwarding rules")} -m mark --mark 0x4000/0x4000 -j ACCEPT`,
  );
  filter.append(
    "KUBE-FORWARD",
    `${
      quote("kubernetes forwarding conntrack rule")
    } -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  );
}

function recentMask(a: Addressing): string {
  return a.family === "ipv4" ? "255.255.255.255" : "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
}

/**
 * Cilium's chains and rules as the agent installs them with AKS's configuration
 * (`enable-endpoint-routes`, native routing, no iptables masquerade, no IPsec).
 */
function addCilium(t: Tables, a: Addressing): void {
  const v4 = a.family === "ipv4";
  // The feeder rules; CILIUM_OUTPUT_nat, CILIUM_PRE_nat and CILIUM_POST_mangle are IPv4-only.
  const feeders: [TableBuilder, string, string, boolean][] = [
    [t.filter, "INPUT", "CILIUM_INPUT", true],
    [t.filter, "OUTPUT", "CILIUM_OUTPUT", true],
    [t.raw, "OUTPUT", "CILIUM_OUTPUT_raw", true],
    [t.nat, "POSTROUTING", "CILIUM_POST_nat", true],
    [t.nat, "OUTPUT", "CILIUM_OUTPUT_nat", v4],
    [t.nat, "PREROUTING", "CILIUM_PRE_nat", v4],
    [t.mangle, "POSTROUTING", "CILIUM_POST_mangle", v4],
    [t.mangle, "PREROUTING", "CILIUM_PRE_mangle", true],
    [t.raw, "PREROUTING", "CILIUM_PRE_raw", true],
    [t.filter, "FORWARD", "CILIUM_FORWARD", true],
  ];
  for (const [table, hook, chain, present] of feeders) {
    if (!present) continue;
    table.chain(chain);
    table.append(hook, `${quote(`cilium-feeder: ${chain}`)} -j ${chain}`);
  }

  // Static proxy rules.
  t.raw.append(
    "CILIUM_PRE_raw",
    `-m mark --mark 0x200/0xf00 ${quote("cilium: NOTRACK for proxy traffic")} -j CT --notrack`,
  );
  t.filter.append(
    "CILIUM_INPUT",
    `-m mark --mark 0x200/0xf00 ${quote("cilium: ACCEPT for proxy traffic")} -j ACCEPT`,
  );
  const returnNotrack = (dev: string) =>
    `-o ${dev} -m mark --mark 0xa00/0xfffffeff ${
      quote("cilium: NOTRACK for proxy return traffic")
    } -j CT --notrack`;
  if (v4) {
    t.raw.append("CILIUM_OUTPUT_raw", returnNotrack("lxc+"));
    t.raw.append("CILIUM_OUTPUT_raw", returnNotrack("cilium_host"));
    for (const dev of ["lxc+", "cilium_host"]) {
      t.raw.append(
        "CILIUM_OUTPUT_raw",
        `-o ${dev} -m mark --mark 0x800/0xe00 ${
          quote("cilium: NOTRACK for L7 proxy upstream traffic")
        } -j CT --notrack`,
      );
    }
  } else {
    t.raw.append("CILIUM_OUTPUT_raw", returnNotrack("cilium_host"));
    t.raw.append("CILIUM_OUTPUT_raw", returnNotrack("lxc+"));
  }
  t.filter.append(
    "CILIUM_OUTPUT",
    `-m mark --mark 0xa00/0xe00 ${quote("cilium: ACCEPT for proxy traffic")} -j ACCEPT`,
  );
  if (v4) {
    t.filter.append(
      "CILIUM_OUTPUT",
      `-m mark --mark 0x800/0xe00 ${
        quote("cilium: ACCEPT for l7 proxy upstream traffic")
      } -j ACCEPT`,
    );
  }
  t.mangle.append(
    "CILIUM_PRE_mangle",
    `-m socket --transparent -m mark ! --mark 0xe00/0xf00 ${
      quote("cilium: any->pod redirect proxied traffic to host proxy")
    } -j MARK --set-xmark 0x200/0xffffffff`,
  );

  // FORWARD accept rules for cilium_host and, with endpoint routes, the lxc+ devices.
  const forward = (dir: "-i" | "-o", dev: string, text: string) =>
    t.filter.append("CILIUM_FORWARD", `${dir} ${dev} ${quote(`cilium: ${text}`)} -j ACCEPT`);
  forward("-o", "cilium_host", "any->cluster on cilium_host forward accept");
  forward("-i", "cilium_host", "cluster->any on cilium_host forward accept (nodeport)");
  forward("-i", "lxc+", "cluster->any on lxc+ forward accept");
  forward("-i", "cilium_net", "cluster->any on cilium_net forward accept (nodeport)");
  forward("-o", "lxc+", "any->cluster on lxc+ forward accept");
  forward("-i", "lxc+", "cluster->any on lxc+ forward accept (nodeport)");

  // Host traffic mark.
  const notMarks = ["0xe00/0xf00", "0xd00/0xf00", "0x400/0xf00", "0xa00/0xe00", "0x800/0xe00"]
    .concat(["0xf00/0xf00"])
    .map((m) => `-m mark ! --mark ${m}`).join(" ");
  t.filter.append(
    "CILIUM_OUTPUT",
    `${notMarks} ${quote("cilium: host->any mark as from host")} -j MARK --set-xmark 0xc00/0xf00`,
  );
}

/** azure-ip-masq-agent-v2 (nonMasqueradeCIDRs from the AKS reconciled config). */
function addIpMasqAgent(t: Tables, a: Addressing): void {
  t.nat.chain("IP-MASQ-AGENT");
  // The v2 agent passes the comment with literal quotes, so the saved comment keeps them.
  t.nat.append(
    "POSTROUTING",
    `${
      quote(
        '\\"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain\\"',
      )
    } -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT`,
  );
  const cidrs = [a.nodeSubnet, a.serviceCidr, a.vnet, a.podCidr];
  if (a.family === "ipv6") cidrs.push("fe80::/10"); // masqLinkLocalIPv6 defaults to false
  for (const cidr of cidrs) {
    t.nat.append(
      "IP-MASQ-AGENT",
      `-d ${cidr} ${quote("ip-masq-agent: local traffic is not subject to MASQUERADE")} -j RETURN`,
    );
  }
  t.nat.append(
    "IP-MASQ-AGENT",
    `${
      quote("ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)")
    } -j MASQUERADE`,
  );
}

/** Typical hand-made additions a node operator might make; each must be flagged. */
function addUserRules(t: Tables, a: Addressing): PlantedRule[] {
  const v4 = a.family === "ipv4";
  const blocked = v4 ? "203.0.113.7/32" : "2001:db8:203::7/128";
  const trusted = v4 ? "192.0.2.2/32" : "2001:db8:2::2/128";
  const backend = v4 ? "10.244.3.10:80" : "[fd12:3456:789a::3:a]:80";
  const planted: PlantedRule[] = [];
  const plant = (table: TableBuilder, chain: string, spec: string, top: boolean) => {
    if (top) table.insert(chain, spec);
    else table.append(chain, spec);
    planted.push({ table: table.name, rule: `-A ${chain} ${spec}` });
  };
  plant(t.filter, "INPUT", `-s ${blocked} -j DROP`, true);
  t.filter.chain("DOCKER-USER");
  planted.push({ table: "filter", rule: "-N DOCKER-USER" });
  plant(t.filter, "FORWARD", "-j DOCKER-USER", true);
  plant(t.filter, "DOCKER-USER", `! -s ${trusted} -i eth0 -j DROP`, false);
  plant(
    t.nat,
    "PREROUTING",
    `-d ${a.nodeIp}${a.host} -p tcp -m tcp --dport 8080 -j DNAT --to-destination ${backend}`,
    false,
  );
  return planted;
}

// ---------------------------------------------------------------------------------------
// Entry points

/**
 * Generates the `iptables-save` dump of one node. Deterministic for a given seed, so a
 * benchmark and a test can regenerate exactly the same ruleset.
 */
export function generateRuleset(options: RulesetOptions): GeneratedRuleset {
  if (
    !Number.isInteger(options.services) || options.services < 0 || options.services > MAX_SERVICES
  ) {
    throw new RangeError(
      `services must be an integer in [0, ${MAX_SERVICES}], got ${options.services}`,
    );
  }
  const a = options.family === "ipv4" ? IPV4_ADDRESSING : IPV6_ADDRESSING;
  const random = new Random(options.seed ?? 1);
  const services = makeServices(random, a, options.services);
  const t: Tables = {
    raw: new TableBuilder("raw"),
    mangle: new TableBuilder("mangle"),
    filter: new TableBuilder("filter"),
    nat: new TableBuilder("nat"),
    security: new TableBuilder("security"),
  };
  addAksHost(t, a);
  addKubeProxyJumps(t);
  addKubelet(t, a);
  addKubeProxyRules(t, a, services);
  addCilium(t, a);
  addIpMasqAgent(t, a);
  const userRules = options.userRules ? addUserRules(t, a) : [];

  const save = a.family === "ipv4" ? "iptables-nft-save" : "ip6tables-nft-save";
  const stamp = "Mon Jan  5 10:00:00 2026";
  const out: string[] = [];
  const counts = { rules: 0, lines: 0 };
  for (const name of DUMP_TABLE_ORDER) {
    out.push(`# Generated by ${save} v1.8.9 (nf_tables) on ${stamp}`);
    t[name].render(out, counts);
    out.push(`# Completed on ${stamp}`);
  }
  return {
    dump: out.join("\n") + "\n",
    userRules,
    ruleCount: counts.rules,
    lineCount: counts.lines,
  };
}

const CliOptions = z.object({
  services: z.coerce.number().int().min(0).max(MAX_SERVICES),
  family: z.enum(["ipv4", "ipv6"]),
  seed: z.coerce.number().int().optional(),
  userRules: z.boolean(),
});

/** Parses `--services N --family F [--seed N] [--user-rules]` (also `--name=value`). */
function parseCli(args: string[]): z.infer<typeof CliOptions> {
  const raw: Record<string, string | boolean> = { userRules: false };
  const keys: Record<string, string> = { services: "services", family: "family", seed: "seed" };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--user-rules") {
      raw.userRules = true;
      continue;
    }
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = match ? keys[match[1]] : undefined;
    if (!match || key === undefined) throw new Error(`unknown argument ${arg}`);
    const value = match[2] ?? args[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    raw[key] = value;
  }
  return CliOptions.parse(raw);
}

async function writeAll(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let offset = 0; offset < bytes.length;) {
    offset += await Deno.stdout.write(bytes.subarray(offset));
  }
}

if (import.meta.main) {
  let options: z.infer<typeof CliOptions>;
  try {
    options = parseCli(Deno.args);
  } catch (error) {
    const message = error instanceof z.ZodError
      ? z.prettifyError(error)
      : error instanceof Error
      ? error.message
      : String(error);
    console.error(
      `${message}\n` +
        "usage: deno run bench/ruleset.ts --services N --family ipv4|ipv6 [--seed N] [--user-rules]",
    );
    Deno.exit(2);
  }
  const result = generateRuleset(options);
  await writeAll(result.dump);
  console.error(
    `${options.family}: ${options.services} services, ${result.ruleCount} rules, ` +
      `${result.lineCount} checked lines, ${result.userRules.length} planted user rules`,
  );
}
