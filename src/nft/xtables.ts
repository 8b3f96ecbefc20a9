/**
 * The nf_tables tables iptables-nft itself creates, and their built-in base chains with
 * the type, hook and priority iptables-nft gives them (iptables 1.8.9, measured with
 * `nft -j list chains` after `iptables-nft -t T -A CHAIN`; IPv4 and IPv6 alike).
 * A base chain in these tables that differs is not shown by `iptables-nft-save` (it
 * prints ``# Table `filter' contains incompatible base-chains``, hides the chain and its
 * rules, and exits 0), so it is listed through nft.
 *
 * @module
 */

import type { Chain } from "./chain.ts";

/** Type, hook and priority of a built-in chain. */
interface BuiltinChain {
  type: string;
  hook: string;
  prio: number;
}

function chains(
  type: string,
  prio: number,
  hooks: Record<string, string>,
): Record<string, BuiltinChain> {
  return Object.fromEntries(
    Object.entries(hooks).map(([name, hook]) => [name, { type, hook, prio }]),
  );
}

const XTABLES: Record<string, Record<string, BuiltinChain>> = {
  filter: chains("filter", 0, { INPUT: "input", FORWARD: "forward", OUTPUT: "output" }),
  nat: {
    PREROUTING: { type: "nat", hook: "prerouting", prio: -100 },
    INPUT: { type: "nat", hook: "input", prio: 100 },
    OUTPUT: { type: "nat", hook: "output", prio: -100 },
    POSTROUTING: { type: "nat", hook: "postrouting", prio: 100 },
  },
  mangle: {
    ...chains("filter", -150, {
      PREROUTING: "prerouting",
      INPUT: "input",
      FORWARD: "forward",
      POSTROUTING: "postrouting",
    }),
    OUTPUT: { type: "route", hook: "output", prio: -150 },
  },
  raw: chains("filter", -300, { PREROUTING: "prerouting", OUTPUT: "output" }),
  security: chains("filter", 150, { INPUT: "input", FORWARD: "forward", OUTPUT: "output" }),
};

/** Whether `family`/`table` is a table iptables-nft (or ip6tables-nft) manages. */
export function isXtablesTable(family: string, table: string): boolean {
  return (family === "ip" || family === "ip6") && Object.hasOwn(XTABLES, table);
}

/** iptables refuses a chain name longer than this (`XT_EXTENSION_MAXNAMELEN` - 1). */
const MAX_IPTABLES_CHAIN_NAME = 28;

/**
 * Whether iptables could have named a chain so: nft (its JSON, or netlink) takes up to
 * 255 bytes of anything, and `iptables-nft-save` prints the name raw, so a name with a
 * newline or a space could forge dump lines (`COMMIT`, `*raw`, `-A ...`) that parsing
 * alone cannot tell from real ones. Such a chain is listed through nft instead.
 */
export function iptablesCanName(name: string): boolean {
  return new TextEncoder().encode(name).length <= MAX_IPTABLES_CHAIN_NAME &&
    // deno-lint-ignore no-control-regex
    !/[\u0000-\u0020\u007f-\u00a0"'\u2028\u2029]/.test(name) && !/^[-!]/.test(name);
}

/**
 * Whether a chain of an iptables table is what iptables-nft-save shows faithfully: a
 * regular chain with a name iptables could write, or a built-in chain with its standard
 * type, hook and priority.
 */
export function isStandardChain(chain: Chain): boolean {
  const extra = Object.keys(chain).filter((key) =>
    !["family", "table", "name", "handle", "type", "hook", "prio", "policy"].includes(key)
  );
  if (chain.hook === undefined && chain.type === undefined) {
    return extra.length === 0 && iptablesCanName(chain.name);
  }
  const builtin =
    Object.hasOwn(XTABLES, chain.table) && Object.hasOwn(XTABLES[chain.table], chain.name)
      ? XTABLES[chain.table][chain.name]
      : undefined;
  return builtin !== undefined && extra.length === 0 && chain.type === builtin.type &&
    chain.hook === builtin.hook && chain.prio === builtin.prio &&
    (chain.policy === "accept" || chain.policy === "drop");
}
