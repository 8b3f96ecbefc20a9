/**
 * One nftables object, one line: the `nft` statement that would create it
 * (`add rule inet sneaky in tcp dport 22 drop`), in a stable form allowlist patterns
 * can be written against. What this renderer does not know (an expression or statement
 * type it has no syntax for, a field of an unexpected shape) is written as compact JSON
 * in its place, so nothing is ever dropped and no input can make rendering fail.
 *
 * Stable: handles, packet and byte counters, quota usage and element expiry are left
 * out, so an object's line changes only when the object does. One line: every string
 * that is not a plain word is written in double quotes with JSON escapes, and line
 * breaks of any kind are escaped, so a hostile name or comment can neither span lines
 * nor pass for syntax around it.
 *
 * @module
 */

/** A parsed JSON value as nft printed it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Strings printed bare: nft's own identifiers, numbers, addresses, `@set`, `veth*`. */
const PLAIN = /^[A-Za-z0-9_.:/@$*-]+$/;
/** Characters JSON.stringify leaves raw that still break or disguise a line. */
const LINE_BREAKERS = /[\u007f-\u009f\u2028\u2029]/g;

function escapeBreakers(text: string): string {
  return text.replace(
    LINE_BREAKERS,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A string as a single-line double-quoted token with JSON escapes. */
export function quoted(text: string): string {
  return escapeBreakers(JSON.stringify(text));
}

/** A name or value: bare when it is a plain word, else {@linkcode quoted}. */
export function word(text: string): string {
  return PLAIN.test(text) ? text : quoted(text);
}

/** Compact JSON on one line: the fallback for whatever has no nft syntax here. */
export function canonical(value: unknown): string {
  return escapeBreakers(JSON.stringify(value) ?? "null");
}

function isObject(value: unknown): value is { [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

/** A string or number as a token; undefined for anything else. */
function scalar(value: unknown): string | undefined {
  if (typeof value === "string") return word(value);
  if (typeof value === "number") return String(value);
  return undefined;
}

/** The single key of `{ key: body }`, the shape of every nft expression and statement. */
function single(value: unknown): [string, Json] | undefined {
  if (!isObject(value)) return undefined;
  const keys = Object.keys(value);
  return keys.length === 1 ? [keys[0], value[keys[0]]] : undefined;
}

/** Renders `body` with `render`, or falls back to the canonical form of `whole`. */
function orCanonical(rendered: string | undefined, whole: unknown): string {
  return rendered ?? canonical(whole);
}

const BINARY_OPERATORS = new Set(["&", "|", "^", "<<", ">>"]);
/** Relational operators of a match, written bare. */
const OPERATORS = new Set(["==", "!=", "<", ">", "<=", ">=", "in", "&"]);
const VERDICTS = new Set(["accept", "drop", "continue", "return"]);

/** nft expression handlers: undefined when the body has a shape they do not know. */
const EXPRESSIONS: Record<string, (body: Json) => string | undefined> = {
  concat: (body) => Array.isArray(body) ? body.map(expression).join(" . ") : undefined,
  set: (body) => Array.isArray(body) ? `{ ${body.map(member).join(", ")} }` : `{ ${member(body)} }`,
  map: (body) =>
    isObject(body) ? `${expression(body.key)} map ${expression(body.data)}` : undefined,
  prefix: (body) => {
    if (!isObject(body) || num(body.len) === undefined) return undefined;
    return `${expression(body.addr)}/${body.len}`;
  },
  range: (body) =>
    Array.isArray(body) && body.length === 2
      ? `${expression(body[0])}-${expression(body[1])}`
      : undefined,
  payload: (body) => {
    if (!isObject(body)) return undefined;
    const protocol = str(body.protocol);
    const field = str(body.field);
    if (protocol !== undefined && field !== undefined) return `${word(protocol)} ${word(field)}`;
    const base = str(body.base);
    if (base !== undefined && num(body.offset) !== undefined && num(body.len) !== undefined) {
      return `@${word(base)},${body.offset},${body.len}`;
    }
    return undefined;
  },
  exthdr: (body) => named("exthdr", body),
  "tcp option": (body) => named("tcp option", body),
  "sctp chunk": (body) => named("sctp chunk", body),
  "dccp option": (body) =>
    isObject(body) && num(body.type) !== undefined ? `dccp option ${body.type}` : undefined,
  meta: (body) => keyed("meta", body),
  socket: (body) => keyed("socket", body),
  osf: (body) => keyed("osf", body),
  rt: (body) => {
    if (!isObject(body) || str(body.key) === undefined) return undefined;
    const family = str(body.family);
    return `rt ${family !== undefined ? `${word(family)} ` : ""}${word(body.key as string)}`;
  },
  ct: (body) => {
    if (!isObject(body) || str(body.key) === undefined) return undefined;
    const parts = ["ct"];
    const dir = str(body.dir);
    const family = str(body.family);
    if (dir !== undefined) parts.push(word(dir));
    if (family !== undefined) parts.push(word(family));
    parts.push(word(body.key as string));
    return parts.join(" ");
  },
  numgen: (body) => {
    if (!isObject(body) || str(body.mode) === undefined || num(body.mod) === undefined) {
      return undefined;
    }
    const offset = num(body.offset);
    return `numgen ${word(body.mode as string)} mod ${body.mod}` +
      (offset ? ` offset ${offset}` : "");
  },
  jhash: (body) => {
    if (!isObject(body) || num(body.mod) === undefined) return undefined;
    let text = `jhash ${expression(body.expr)} mod ${body.mod}`;
    if (num(body.seed) !== undefined) text += ` seed ${body.seed}`;
    if (num(body.offset)) text += ` offset ${body.offset}`;
    return text;
  },
  symhash: (body) => {
    if (!isObject(body) || num(body.mod) === undefined) return undefined;
    return `symhash mod ${body.mod}` + (num(body.offset) ? ` offset ${body.offset}` : "");
  },
  fib: (body) => {
    if (!isObject(body) || str(body.result) === undefined) return undefined;
    const flags = Array.isArray(body.flags)
      ? body.flags
      : body.flags === undefined
      ? []
      : [body.flags];
    if (!flags.every((flag) => typeof flag === "string")) return undefined;
    return `fib ${flags.map((flag) => word(flag as string)).join(" . ")} ${
      word(body.result as string)
    }`;
  },
  elem: (body) => {
    if (!isObject(body)) return undefined;
    let text = expression(body.val);
    for (const [key, value] of Object.entries(body)) {
      if (key === "val" || key === "expires") continue; // expiry changes every second
      if (key === "comment" && typeof value === "string") text += ` comment ${quoted(value)}`;
      else if (typeof value === "number" || typeof value === "string") {
        text += ` ${word(key)} ${scalar(value)}`;
      } else if (key === "counter") text += " counter";
      else text += ` ${canonical({ [key]: value })}`;
    }
    return text;
  },
  jump: (body) =>
    isObject(body) && str(body.target) ? `jump ${word(body.target as string)}` : undefined,
  goto: (body) =>
    isObject(body) && str(body.target) ? `goto ${word(body.target as string)}` : undefined,
};

/** A member of a set or anonymous map: `key : value` for a map's `[key, value]` pair. */
function member(value: Json): string {
  if (Array.isArray(value) && value.length === 2) {
    return `${expression(value[0])} : ${expression(value[1])}`;
  }
  return expression(value);
}

/** `kind name field` expressions (exthdr, tcp option, sctp chunk). */
function named(kind: string, body: Json): string | undefined {
  if (!isObject(body) || str(body.name) === undefined) return undefined;
  let text = `${kind} ${word(body.name as string)}`;
  const field = str(body.field);
  if (field !== undefined) text += ` ${word(field)}`;
  else if (num(body.offset) !== undefined) text += ` offset ${body.offset}`;
  return text;
}

/** `kind key` expressions (meta, socket, osf). */
function keyed(kind: string, body: Json): string | undefined {
  if (!isObject(body) || str(body.key) === undefined) return undefined;
  return `${kind} ${word(body.key as string)}`;
}

/** An nft JSON expression as nft syntax, or its canonical JSON where it has none here. */
export function expression(value: Json | undefined): string {
  if (value === undefined || value === null) return canonical(value ?? null);
  if (typeof value === "string") return word(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `{ ${value.map(expression).join(", ")} }`;
  const entry = single(value);
  if (entry === undefined) return canonical(value);
  const [key, body] = entry;
  if (VERDICTS.has(key) && body === null) return key;
  if (BINARY_OPERATORS.has(key) && Array.isArray(body) && body.length === 2) {
    return `${expression(body[0])} ${key} ${expression(body[1])}`;
  }
  const handler = EXPRESSIONS[key];
  return orCanonical(handler?.(body), value);
}

/** nft statement handlers: undefined when the body has a shape they do not know. */
const STATEMENTS: Record<string, (body: Json) => string | undefined> = {
  match: (body) => {
    if (!isObject(body) || str(body.op) === undefined) return undefined;
    const op = body.op as string;
    const left = expression(body.left);
    const right = expression(body.right);
    // nft's own form: `==` and `in` are implied, except after a binary operation
    // (`meta mark & 16384 == 0`), where leaving it out would read as one expression.
    const leftOperator = single(body.left)?.[0];
    const leftIsBinary = leftOperator !== undefined && BINARY_OPERATORS.has(leftOperator);
    if ((op === "==" || op === "in") && !leftIsBinary) return `${left} ${right}`;
    return `${left} ${OPERATORS.has(op) ? op : quoted(op)} ${right}`;
  },
  counter: (body) => {
    if (typeof body === "string") return `counter name ${word(body)}`;
    return isObject(body) || body === null ? "counter" : undefined;
  },
  mangle: (body) =>
    isObject(body) ? `${expression(body.key)} set ${expression(body.value)}` : undefined,
  quota: (body) => {
    if (typeof body === "string") return `quota name ${word(body)}`;
    if (!isObject(body) || num(body.val) === undefined) return undefined;
    const unit = str(body.val_unit) ?? "bytes";
    return `quota ${body.inv === true ? "over " : ""}${body.val} ${word(unit)}`;
  },
  limit: (body) => {
    if (typeof body === "string") return `limit name ${word(body)}`;
    if (!isObject(body) || num(body.rate) === undefined) return undefined;
    const unit = str(body.rate_unit);
    let text = `limit rate ${body.inv === true ? "over " : ""}${body.rate}${
      unit !== undefined && unit !== "packets" ? ` ${word(unit)}` : ""
    }/${word(str(body.per) ?? "second")}`;
    if (num(body.burst)) {
      const burstUnit = str(body.burst_unit);
      text += ` burst ${body.burst}${
        burstUnit !== undefined && burstUnit !== "packets" ? ` ${word(burstUnit)}` : " packets"
      }`;
    }
    return text;
  },
  snat: (body) => nat("snat", body),
  dnat: (body) => nat("dnat", body),
  masquerade: (body) => nat("masquerade", body),
  redirect: (body) => nat("redirect", body),
  reject: (body) => {
    if (body === null) return "reject";
    if (!isObject(body)) return undefined;
    const type = str(body.type);
    if (type === undefined) return "reject";
    return body.expr === undefined
      ? `reject with ${word(type)}`
      : `reject with ${word(type)} ${expression(body.expr)}`;
  },
  set: (body) => {
    if (!isObject(body) || str(body.op) === undefined) return undefined;
    return `${word(body.op as string)} ${expression(body.set)} { ${expression(body.elem)} }`;
  },
  vmap: (body) =>
    isObject(body) ? `${expression(body.key)} vmap ${expression(body.data)}` : undefined,
  log: (body) => {
    if (body === null) return "log";
    if (!isObject(body)) return undefined;
    let text = "log";
    for (const [key, value] of Object.entries(body)) {
      if (key === "prefix" && typeof value === "string") text += ` prefix ${quoted(value)}`;
      else if (typeof value === "string" || typeof value === "number") {
        text += ` ${word(key)} ${scalar(value)}`;
      } else text += ` ${canonical({ [key]: value })}`;
    }
    return text;
  },
  notrack: (body) => body === null ? "notrack" : undefined,
  "ct helper": (body) => typeof body === "string" ? `ct helper set ${word(body)}` : undefined,
  "ct timeout": (body) => typeof body === "string" ? `ct timeout set ${word(body)}` : undefined,
  "ct expectation": (body) =>
    typeof body === "string" ? `ct expectation set ${word(body)}` : undefined,
  "ct count": (body) =>
    isObject(body) && num(body.val) !== undefined
      ? `ct count ${body.inv === true ? "over " : ""}${body.val}`
      : undefined,
  queue: (body) => {
    if (!isObject(body)) return body === null ? "queue" : undefined;
    let text = "queue";
    if (body.flags !== undefined) text += ` flags ${expression(body.flags)}`;
    if (body.num !== undefined) text += ` num ${expression(body.num)}`;
    return text;
  },
  fwd: (body) => {
    if (!isObject(body)) return undefined;
    const family = str(body.family);
    let text = "fwd";
    if (family !== undefined) text += ` ${word(family)}`;
    if (body.addr !== undefined) text += ` to ${expression(body.addr)} device`;
    return `${text}${body.addr === undefined ? " to" : ""} ${expression(body.dev)}`;
  },
  dup: (body) => {
    if (!isObject(body)) return undefined;
    let text = `dup to ${expression(body.addr)}`;
    if (body.dev !== undefined) text += ` device ${expression(body.dev)}`;
    return text;
  },
  flow: (body) =>
    isObject(body) && str(body.op) !== undefined
      ? `flow ${word(body.op as string)} ${expression(body.flowtable)}`
      : undefined,
  xt: (body) =>
    isObject(body) && str(body.type) !== undefined && str(body.name) !== undefined
      ? `xt ${word(body.type as string)} ${quoted(body.name as string)}`
      : undefined,
  last: () => "last", // its "used" time changes with every packet
  tproxy: (body) => {
    if (!isObject(body)) return undefined;
    const family = str(body.family);
    let text = `tproxy${family !== undefined ? ` ${word(family)}` : ""} to`;
    if (body.addr !== undefined) text += ` ${expression(body.addr)}`;
    if (body.port !== undefined) text += ` :${expression(body.port)}`;
    return text;
  },
};

/** snat/dnat/masquerade/redirect. */
function nat(kind: string, body: Json): string | undefined {
  if (body === null) return kind;
  if (!isObject(body)) return undefined;
  let text = kind;
  const family = str(body.family);
  if (family !== undefined) text += ` ${word(family)}`;
  if (body.addr !== undefined || body.port !== undefined) {
    text += " to";
    let addr = body.addr !== undefined ? expression(body.addr) : "";
    // An IPv6 address before a port is bracketed, as nft writes it.
    if (body.port !== undefined && addr.includes(":")) addr = `[${addr}]`;
    if (addr !== "") text += ` ${addr}`;
    if (body.port !== undefined) text += `${addr !== "" ? "" : " "}:${expression(body.port)}`;
  }
  if (body.flags !== undefined) {
    const flags = Array.isArray(body.flags) ? body.flags : [body.flags];
    text += ` ${flags.map(expression).join(",")}`;
  }
  for (const key of Object.keys(body)) {
    if (!["family", "addr", "port", "flags"].includes(key)) {
      text += ` ${canonical({ [key]: body[key] })}`;
    }
  }
  return text;
}

/** An nft JSON statement as nft syntax, or its canonical JSON where it has none here. */
export function statement(value: Json): string {
  const entry = single(value);
  if (entry === undefined) return canonical(value);
  const [key, body] = entry;
  if (VERDICTS.has(key) && body === null) return key;
  if (key === "jump" || key === "goto") return expression(value);
  const handler = STATEMENTS[key];
  return orCanonical(handler?.(body), value);
}

/** What is left of an object once its rendered and volatile fields are taken out. */
export function rest(object: { [key: string]: Json }, known: readonly string[]): string {
  const left: { [key: string]: Json } = {};
  let any = false;
  for (const [key, value] of Object.entries(object)) {
    if (known.includes(key)) continue;
    left[key] = value;
    any = true;
  }
  return any ? ` ${canonical(left)}` : "";
}
