/**
 * The order in which a ruleset's chains are created. `iptables-restore` creates chains in
 * the order the dump declares them, and `iptables-save` declares them sorted. On a real
 * node kube-proxy creates its `KUBE-SVC-<hash>`/`KUBE-SEP-<hash>` chains service by
 * service, an order unrelated to the sorted one. That matters for reading: iptables-nft
 * 1.8.9 sorts chains by inserting each into a list as the kernel returns them (in
 * creation order), so chains created already sorted are its slowest case (several times
 * slower at 5,000 services). The suite therefore loads rulesets in a kube-proxy-like
 * order and also reports the sorted case.
 *
 * @module
 */

/** A small seeded PRNG (splitmix32), so the order is reproducible. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 0x100000000;
  };
}

const USER_CHAIN = /^:\S+ - \[\d+:\d+\]$/;

/**
 * `dump` with the user chains of each table declared in a seeded random order (built-in
 * chains, rules and everything else unchanged), as a stand-in for kube-proxy's order.
 * Loading it creates the same ruleset; `iptables-save` prints it back sorted.
 */
export function inKubeProxyCreationOrder(dump: string, seed: number): string {
  const next = random(seed);
  const lines = dump.split("\n");
  const out: string[] = [];
  let pending: string[] = [];
  const flush = () => {
    for (let i = pending.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [pending[i], pending[j]] = [pending[j], pending[i]];
    }
    for (const line of pending) out.push(line);
    pending = [];
  };
  for (const line of lines) {
    if (USER_CHAIN.test(line)) {
      pending.push(line);
      continue;
    }
    flush();
    out.push(line);
  }
  flush();
  return out.join("\n");
}
