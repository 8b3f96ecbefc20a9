/**
 * A realistic ruleset of kube-proxy in nftables mode, as an `nft -f` script: tables
 * `kube-proxy` of family `ip` (IPv4) or `ip6` (IPv6) with the layout of kube-proxy's
 * nftables proxier (pkg/proxy/nftables/proxier.go: its base chains at priority
 * dstnat-10, dstnat and srcnat, written as numbers (-110, -100, 100) because nft 1.0.6 accepts the names only on some hooks, the `services` dispatch through the verdict maps
 * `service-ips` and `service-nodeports`, `endpoints-check` and `firewall-check` with
 * their maps, masquerading through the mark, one `service-`, `external-`, `firewall-` and
 * `endpoint-` chain per service port and endpoint, named `HASH-ns/name/proto/port`).
 * Deterministic for the same options.
 *
 * @module
 */

/** The options of {@linkcode generateKubeProxyNft}. */
export interface KubeProxyNftOptions {
  family: "ipv4" | "ipv6";
  /** Service ports; every 5th is a NodePort, every 7th has no endpoints, every 11th a LoadBalancer with source ranges. */
  services: number;
  /** The pod CIDR (kube-proxy's local traffic detector). */
  podCidr?: string;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** kube-proxy's chain-name hash: the first 8 base32 characters of SHA-256, then `-name`. */
async function hashed(name: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(name)),
  );
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 8) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length === 8) break;
  }
  return `${out}-${name}`;
}

/** The `nft -f` script of kube-proxy's table for `options`. */
export async function generateKubeProxyNft(options: KubeProxyNftOptions): Promise<string> {
  const v6 = options.family === "ipv6";
  const fam = v6 ? "ip6" : "ip";
  const addrType = v6 ? "ipv6_addr" : "ipv4_addr";
  const noLocalhost = v6 ? "ip6 daddr != ::1" : "ip daddr != 127.0.0.0/8";
  const podCidr = options.podCidr ?? (v6 ? "fd00:10:244::/56" : "10.244.0.0/16");
  const t = `${fam} kube-proxy`;
  const lines: string[] = [
    `add table ${t} { comment "rules for kube-proxy" ; }`,
    `add chain ${t} filter-prerouting { type filter hook prerouting priority -110 ; }`,
    `add chain ${t} filter-input { type filter hook input priority -110 ; }`,
    `add chain ${t} filter-forward { type filter hook forward priority -110 ; }`,
    `add chain ${t} filter-output { type filter hook output priority -110 ; }`,
    `add chain ${t} nat-prerouting { type nat hook prerouting priority -100 ; }`,
    `add chain ${t} nat-output { type nat hook output priority -100 ; }`,
    `add chain ${t} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    `add chain ${t} endpoints-check`,
    `add chain ${t} firewall-check`,
    `add chain ${t} services`,
    `add chain ${t} masquerading`,
    `add chain ${t} mark-for-masquerade`,
    `add rule ${t} filter-input ct state new jump endpoints-check`,
    `add rule ${t} filter-forward ct state new jump endpoints-check`,
    `add rule ${t} filter-output ct state new jump endpoints-check`,
    `add rule ${t} filter-prerouting ct state new jump firewall-check`,
    `add rule ${t} filter-output ct state new jump firewall-check`,
    `add rule ${t} nat-output jump services`,
    `add rule ${t} nat-prerouting jump services`,
    `add rule ${t} nat-postrouting jump masquerading`,
    `add rule ${t} mark-for-masquerade mark set mark or 0x4000`,
    `add rule ${t} masquerading mark and 0x4000 == 0 return`,
    `add rule ${t} masquerading mark set mark xor 0x4000`,
    `add rule ${t} masquerading masquerade fully-random`,
    `add map ${t} no-endpoint-services { type ${addrType} . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add map ${t} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `add chain ${t} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `add rule ${t} reject-chain reject`,
    `add rule ${t} endpoints-check ${fam} daddr . meta l4proto . th dport vmap @no-endpoint-services`,
    `add rule ${t} endpoints-check fib daddr type local ${noLocalhost} meta l4proto . th dport vmap @no-endpoint-nodeports`,
    `add map ${t} firewall-ips { type ${addrType} . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
    `add rule ${t} firewall-check ${fam} daddr . meta l4proto . th dport vmap @firewall-ips`,
    `add map ${t} service-ips { type ${addrType} . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${t} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`,
    `add rule ${t} services ${fam} daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${t} services fib daddr type local ${noLocalhost} meta l4proto . th dport vmap @service-nodeports`,
  ];
  const ip = (a: number, b: number) =>
    v6 ? `fd00:10:96::${a.toString(16)}:${b.toString(16)}` : `10.96.${a}.${b}`;
  const podIp = (a: number, b: number) =>
    v6 ? `fd00:10:244:${a.toString(16)}::${b.toString(16)}` : `10.244.${a}.${b}`;
  for (let i = 0; i < options.services; i++) {
    const ns = ["default", "kube-system", "shop", "payments", "monitoring"][i % 5];
    const name = `svc-${i}`;
    const protocol = i % 9 === 4 ? "udp" : "tcp";
    const port = [80, 443, 8080, 53, 9090][i % 5];
    const portName = i % 3 === 0 ? "" : `p${port}`;
    const base = `${ns}/${name}/${protocol}/${portName}`;
    const clusterIp = ip(Math.floor(i / 250) % 256, (i % 250) + 2);
    const service = `service-${await hashed(base)}`;
    const external = `external-${await hashed(base)}`;
    const firewall = `firewall-${await hashed(base)}`;
    const nodePort = 30000 + (i % 2700);
    const key = `${clusterIp} . ${protocol} . ${port}`;
    if (i % 7 === 3) {
      lines.push(
        `add element ${t} no-endpoint-services { ${key} comment "${ns}/${name}:${portName}" : goto reject-chain }`,
      );
      continue;
    }
    lines.push(`add chain ${t} ${service}`);
    lines.push(`add element ${t} service-ips { ${key} : goto ${service} }`);
    lines.push(
      `add rule ${t} ${service} ${fam} daddr ${clusterIp} ${protocol} dport ${port} ${fam} saddr != ${podCidr} jump mark-for-masquerade`,
    );
    const endpoints: string[] = [];
    const count = 1 + (i % 3);
    for (let e = 0; e < count; e++) {
      const epIp = podIp(i % 200, e + 2);
      const epPort = port === 80 ? 8080 : port;
      const endpoint = v6 ? `[${epIp}]:${epPort}` : `${epIp}:${epPort}`;
      const chain = `endpoint-${await hashed(`${base}__${epIp.replaceAll(":", ".")}/${epPort}`)}`;
      endpoints.push(chain);
      lines.push(`add chain ${t} ${chain}`);
      lines.push(`add rule ${t} ${chain} ${fam} saddr ${epIp} jump mark-for-masquerade`);
      lines.push(`add rule ${t} ${chain} meta l4proto ${protocol} dnat to ${endpoint}`);
    }
    lines.push(
      `add rule ${t} ${service} numgen random mod ${endpoints.length} vmap { ${
        endpoints.map((chain, n) => `${n} : goto ${chain}`).join(", ")
      } }`,
    );
    if (i % 5 === 1 || i % 11 === 5) {
      lines.push(`add chain ${t} ${external}`);
      lines.push(`add rule ${t} ${external} jump mark-for-masquerade`);
      lines.push(`add rule ${t} ${external} goto ${service}`);
      lines.push(
        `add element ${t} service-nodeports { ${protocol} . ${nodePort} : goto ${external} }`,
      );
    }
    if (i % 11 === 5) {
      const lbIp = v6
        ? `2001:db8:1::${(i % 4000).toString(16)}`
        : `20.40.${i % 250}.${(i >> 8) % 250 + 1}`;
      const ranges = v6 ? "2001:db8:ffff::/48" : "203.0.113.0/24, 198.51.100.0/24";
      lines.push(`add chain ${t} ${firewall}`);
      lines.push(`add rule ${t} ${firewall} ${fam} saddr != { ${ranges} } drop`);
      lines.push(
        `add element ${t} service-ips { ${lbIp} . ${protocol} . ${port} : goto ${external} }`,
      );
      lines.push(
        `add element ${t} firewall-ips { ${lbIp} . ${protocol} . ${port} comment "${ns}/${name}:${portName}" : goto ${firewall} }`,
      );
    }
  }
  return lines.join("\n") + "\n";
}
