/**
 * `nft -j` output, checked with zod (chains: chain.ts), turned into one line per object
 * (see render.ts):
 *
 * ```
 * add table inet sneaky
 * add chain inet sneaky in { type filter hook input priority -10; policy accept; }
 * add rule inet sneaky in tcp dport 22 drop
 * add set ip kube-proxy nodeport-ips {"type":"ipv4_addr","comment":"..."}
 * add element ip kube-proxy service-ips { 10.0.0.10 . tcp . 53 : goto service-X-ns/dns/tcp/dns }
 * add flowtable inet t ft { hook ingress priority 0; devices = { eth0 }; }
 * ```
 *
 * A node user writes these objects, so the schemas accept whatever shape nft prints:
 * an object the schema does not accept still becomes a line (`add rule {...}`, its JSON),
 * which no allowlist written for the rendered form matches, so it counts as unexpected.
 *
 * @module
 */

import { z } from "zod";
import { asChain, chainLine, itemEntry, jsonObject, priority, tableKey } from "./chain.ts";
import { canonical, expression, type Json, quoted, rest, statement, word } from "./render.ts";

/** An nft address family. */
export const NFT_FAMILIES = ["ip", "ip6", "inet", "arp", "bridge", "netdev"] as const;

const Base = {
  family: z.string(),
  table: z.string(),
  name: z.string(),
};
const TableSchema = z.looseObject({ family: z.string(), name: z.string() });
const RuleSchema = z.looseObject({
  family: z.string(),
  table: z.string(),
  chain: z.string(),
  expr: z.array(z.json()).optional(),
  comment: z.string().optional(),
});
const SetSchema = z.looseObject({ ...Base, elem: z.array(z.json()).optional() });
const FlowtableSchema = z.looseObject({
  ...Base,
  hook: z.string().optional(),
  prio: z.union([z.number(), z.string()]).optional(),
  dev: z.union([z.string(), z.array(z.string())]).optional(),
});

const NamedObjectSchema = z.looseObject(Base);

/** Named stateful objects: inert until a rule refers to them. Fields that count are dropped. */
const STATEFUL_OBJECTS: Record<string, readonly string[]> = {
  counter: ["packets", "bytes"],
  quota: ["used", "used_unit"],
  limit: [],
  "ct helper": [],
  "ct timeout": [],
  "ct expectation": [],
  secmark: [],
  synproxy: [],
};

/** One object's line, with the table it belongs to. */
export interface ObjectLine {
  /** The nft family as printed (`inet`); `?` when the object names none. */
  family: string;
  /** `FAMILY TABLE` as in the lines, e.g. `inet sneaky`; `-` for objects outside a table. */
  table: string;
  /** The chain of a chain or rule; empty for other objects. */
  chain: string;
  text: string;
}

/** A flowtable's devices, always as a list. */
function deviceList(dev: string | string[] | undefined): string {
  if (dev === undefined) return "";
  const list = typeof dev === "string" ? [dev] : dev;
  return ` devices = { ${list.map(word).join(", ")} };`;
}

/** A line for an object the schema did not accept: its kind and JSON, under its table. */
function unparsed(kind: string, body: Json): ObjectLine {
  const fields = jsonObject(body);
  const family = typeof fields?.family === "string" ? fields.family : "?";
  const table = typeof fields?.table === "string"
    ? fields.table
    : kind === "table" && typeof fields?.name === "string"
    ? fields.name
    : undefined;
  return {
    family,
    table: table === undefined ? "-" : tableKey(family, table),
    chain: "",
    text: `add ${word(kind)} ${canonical(body)}`,
  };
}

function elementLine(element: Json): string {
  if (Array.isArray(element) && element.length === 2) {
    return `${expression(element[0])} : ${expression(element[1])}`;
  }
  return expression(element);
}

/**
 * The lines of one item of an `nft -j list` document (none for `metainfo`). Never
 * throws: whatever it cannot read becomes a line holding its JSON.
 */
export function objectLines(item: Json): ObjectLine[] {
  const entry = itemEntry(item);
  if (entry === undefined) {
    return [{ family: "?", table: "-", chain: "", text: `add ${canonical(item)}` }];
  }
  const [kind, body] = entry;
  switch (kind) {
    case "metainfo":
      return [];
    case "table": {
      const parsed = TableSchema.safeParse(body);
      if (!parsed.success) return [unparsed(kind, body)];
      const table = parsed.data;
      let text = `add table ${tableKey(table.family, table.name)}`;
      const flags = table.flags as Json | undefined;
      if (flags !== undefined) {
        const list = Array.isArray(flags) ? flags : [flags];
        text += ` { flags ${list.map(expression).join(", ")}; }`;
      }
      if (typeof table.comment === "string") text += ` comment ${quoted(table.comment)}`;
      text += rest(table as { [key: string]: Json }, [
        "family",
        "name",
        "handle",
        "flags",
        "comment",
      ]);
      return [{ family: table.family, table: tableKey(table.family, table.name), chain: "", text }];
    }
    case "chain": {
      const chain = asChain(body);
      if (chain === undefined) return [unparsed(kind, body)];
      return [{
        family: chain.family,
        table: tableKey(chain.family, chain.table),
        chain: chain.name,
        text: chainLine(chain),
      }];
    }
    case "rule": {
      const parsed = RuleSchema.safeParse(body);
      if (!parsed.success) return [unparsed(kind, body)];
      const rule = parsed.data;
      let text = `add rule ${word(rule.family)} ${word(rule.table)} ${word(rule.chain)}`;
      for (const part of rule.expr ?? []) text += ` ${statement(part)}`;
      if (rule.comment !== undefined) text += ` comment ${quoted(rule.comment)}`;
      text += rest(rule as { [key: string]: Json }, [
        "family",
        "table",
        "chain",
        "handle",
        "expr",
        "comment",
      ]);
      return [{
        family: rule.family,
        table: tableKey(rule.family, rule.table),
        chain: rule.chain,
        text,
      }];
    }
    case "set":
    case "map": {
      const parsed = SetSchema.safeParse(body);
      if (!parsed.success) return [unparsed(kind, body)];
      const set = parsed.data;
      const table = tableKey(set.family, set.table);
      const head = `${table} ${word(set.name)}`;
      const lines: ObjectLine[] = [{
        family: set.family,
        table,
        chain: "",
        text: `add ${kind} ${head}` +
          rest(set as { [key: string]: Json }, ["family", "table", "name", "handle", "elem"]),
      }];
      for (const element of set.elem ?? []) {
        lines.push({
          family: set.family,
          table,
          chain: "",
          text: `add element ${head} { ${elementLine(element)} }`,
        });
      }
      return lines;
    }
    case "flowtable": {
      const parsed = FlowtableSchema.safeParse(body);
      if (!parsed.success) return [unparsed(kind, body)];
      const flowtable = parsed.data;
      const table = tableKey(flowtable.family, flowtable.table);
      const hook = flowtable.hook !== undefined ? ` hook ${word(flowtable.hook)};` : "";
      const text =
        `add flowtable ${table} ${word(flowtable.name)} {${hook}${priority(flowtable.prio)}${
          deviceList(flowtable.dev)
        } }` +
        rest(flowtable as { [key: string]: Json }, [
          "family",
          "table",
          "name",
          "handle",
          "hook",
          "prio",
          "dev",
        ]);
      return [{ family: flowtable.family, table, chain: "", text }];
    }
    default: {
      const volatile = STATEFUL_OBJECTS[kind];
      const parsed = volatile === undefined ? undefined : NamedObjectSchema.safeParse(body);
      if (volatile === undefined || parsed === undefined || !parsed.success) {
        return [unparsed(kind, body)];
      }
      const named = parsed.data as { [key: string]: Json } & typeof parsed.data;
      const table = tableKey(named.family, named.table);
      return [{
        family: named.family,
        table,
        chain: "",
        text: `add ${word(kind)} ${table} ${word(named.name)}` +
          rest(named, ["family", "table", "name", "handle", ...volatile]),
      }];
    }
  }
}
