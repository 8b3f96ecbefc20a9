/**
 * The chains of an `nft -j list chains` document, the part of nft's output every check
 * reads (src/nft/read.ts, step 1), checked without a schema library: a check that
 * only lists chains then loads no zod (9.5 MiB of a one-shot's 72 MiB budget). The
 * other objects nft prints are read with zod schemas in objects.ts, loaded only when a
 * check has such objects to read.
 *
 * @module
 */

import { type Json, rest, word } from "./render.ts";

/** A chain, base (with a hook) or regular; fields nft may add are kept as they are. */
export interface Chain {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  readonly type?: string;
  readonly hook?: string;
  readonly prio?: number | string;
  readonly policy?: string;
  readonly dev?: string | string[];
  readonly [key: string]: Json | undefined;
}

/** `value` as a JSON object, if it is one. */
export function jsonObject(value: Json): { [key: string]: Json } | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value : undefined;
}

function optional(value: Json | undefined, accepts: (value: Json) => boolean): boolean {
  return value === undefined || accepts(value);
}

const isString = (value: Json): value is string => typeof value === "string";

/**
 * `body` as a {@linkcode Chain}: `family`, `table` and `name` strings; `type`, `hook`
 * and `policy` strings, `prio` a number or a string, `dev` a string or a list of
 * strings, each when present; anything else is kept. Undefined for any other shape.
 */
export function asChain(body: Json): Chain | undefined {
  const fields = jsonObject(body);
  if (fields === undefined) return undefined;
  const { family, table, name, type, hook, prio, policy, dev } = fields;
  const valid = isString(family) && isString(table) && isString(name) &&
    optional(type, isString) && optional(hook, isString) && optional(policy, isString) &&
    optional(prio, (value) => typeof value === "number" || isString(value)) &&
    optional(dev, (value) => isString(value) || (Array.isArray(value) && value.every(isString)));
  return valid ? fields as Chain : undefined;
}

/** Whether `value` is one document `nft -j` prints: `{"nftables": [...]}`. */
export function isDocument(value: unknown): value is { nftables: Json[] } {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    "nftables" in value && Array.isArray(value.nftables);
}

/** `FAMILY TABLE` as written in lines and reports. */
export function tableKey(family: string, table: string): string {
  return `${word(family)} ${word(table)}`;
}

/** The single `{kind: body}` entry of a list item, if it has that shape. */
export function itemEntry(item: Json): [string, Json] | undefined {
  const body = jsonObject(item);
  if (body === undefined) return undefined;
  const keys = Object.keys(body);
  return keys.length === 1 ? [keys[0], body[keys[0]]] : undefined;
}

function devices(dev: string | string[] | undefined): string {
  if (dev === undefined) return "";
  if (typeof dev === "string") return ` device ${word(dev)};`;
  return ` devices = { ${dev.map(word).join(", ")} };`;
}

/** ` priority P;`, or nothing without a priority. */
export function priority(prio: number | string | undefined): string {
  return prio === undefined ? "" : ` priority ${typeof prio === "number" ? prio : word(prio)};`;
}

/** The line of a chain: `add chain F T N` plus its hook, if it is a base chain. */
export function chainLine(chain: Chain): string {
  let text = `add chain ${word(chain.family)} ${word(chain.table)} ${word(chain.name)}`;
  if (chain.hook !== undefined || chain.type !== undefined) {
    const type = chain.type !== undefined ? `type ${word(chain.type)} ` : "";
    const hook = chain.hook !== undefined ? `hook ${word(chain.hook)}` : "";
    const policy = chain.policy !== undefined ? ` policy ${word(chain.policy)};` : "";
    text += ` { ${type}${hook}${devices(chain.dev)}${priority(chain.prio)}${policy} }`;
  }
  return text +
    rest(chain as { [key: string]: Json }, [
      "family",
      "table",
      "name",
      "handle",
      "type",
      "hook",
      "prio",
      "policy",
      "dev",
    ]);
}
