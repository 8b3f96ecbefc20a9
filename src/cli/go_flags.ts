/**
 * A command-line parser with exactly the semantics of Go's `flag` package (Go 1.19,
 * `ContinueOnError`), so that manifests written for the Go binary keep working and its
 * error texts stay the same. Pure: no I/O, no exceptions; the caller prints and exits.
 *
 * Flags are declared as a table. Integer values are `bigint` because Go's `int` is 64
 * bits wide and values beyond 2^53 must round-trip exactly.
 */

/** The value types a flag can have; Go's `Bool`, `String`, `Int` and `Uint`. */
export type FlagKind = "bool" | "string" | "int" | "uint";

/** The TypeScript type of a parsed value of each kind. */
export interface KindValue {
  bool: boolean;
  string: string;
  int: bigint;
  uint: bigint;
}

interface FlagSpecOf<K extends FlagKind> {
  /** The name as typed after the dash(es). */
  readonly name: string;
  readonly kind: K;
  readonly default: KindValue[K];
  /** One line (or more) for the usage text; a `backquoted` word names the value type. */
  readonly usage: string;
}

/** One row of a flag table. */
export type FlagSpec =
  | FlagSpecOf<"bool">
  | FlagSpecOf<"string">
  | FlagSpecOf<"int">
  | FlagSpecOf<"uint">;

/** The parsed values of a flag table, one property per flag, typed by its kind. */
export type FlagValues<T extends readonly FlagSpec[]> = {
  readonly [S in T[number] as S["name"]]: KindValue[S["kind"]];
};

/** The outcome of {@linkcode parseFlags}: values, a request for help, or Go's error text. */
export type FlagParseResult<T extends readonly FlagSpec[]> =
  | {
    readonly kind: "ok";
    readonly values: FlagValues<T>;
    /** Names of the flags given on the command line (Go's `FlagSet.Visit`). */
    readonly set: ReadonlySet<string>;
    /** The arguments after the flags (Go's `FlagSet.Args`). */
    readonly rest: readonly string[];
  }
  | { readonly kind: "help" }
  | { readonly kind: "error"; readonly message: string };

type FlagValue = KindValue[FlagKind];

/**
 * Parses `args` (without the program name) the way Go's `FlagSet.Parse` does: `-name`
 * or `--name`, `-name=value`, `-name value` (not for booleans), stop at the first
 * non-flag argument or after `--`. `-h`/`-help` ask for help unless such a flag exists.
 */
export function parseFlags<const T extends readonly FlagSpec[]>(
  table: T,
  args: readonly string[],
): FlagParseResult<T> {
  const specs = new Map<string, FlagSpec>();
  const values = new Map<string, FlagValue>();
  for (const spec of table) {
    specs.set(spec.name, spec);
    values.set(spec.name, spec.default);
  }
  const set = new Set<string>();
  let i = 0;
  while (i < args.length) {
    const arg = args[i];
    if (arg.length < 2 || arg[0] !== "-") break;
    let dashes = 1;
    if (arg[1] === "-") {
      dashes = 2;
      if (arg.length === 2) {
        i++;
        break;
      }
    }
    let name = arg.slice(dashes);
    if (name.length === 0 || name[0] === "-" || name[0] === "=") {
      return fail(`bad flag syntax: ${arg}`);
    }
    i++;
    let value: string | undefined;
    const equals = name.indexOf("=", 1);
    if (equals >= 0) {
      value = name.slice(equals + 1);
      name = name.slice(0, equals);
    }
    const spec = specs.get(name);
    if (spec === undefined) {
      if (name === "help" || name === "h") return { kind: "help" };
      return fail(`flag provided but not defined: -${name}`);
    }
    if (spec.kind === "bool") {
      if (value === undefined) {
        values.set(name, true);
      } else {
        const parsed = parseGoBool(value);
        if (parsed === undefined) {
          return fail(`invalid boolean value ${goQuote(value)} for -${name}: parse error`);
        }
        values.set(name, parsed);
      }
    } else {
      if (value === undefined && i < args.length) {
        value = args[i];
        i++;
      }
      if (value === undefined) return fail(`flag needs an argument: -${name}`);
      const parsed = parseValue(spec.kind, value);
      if (!parsed.ok) {
        return fail(`invalid value ${goQuote(value)} for flag -${name}: ${parsed.error}`);
      }
      values.set(name, parsed.value);
    }
    set.add(name);
  }
  // The table's names are the keys and each value has its flag's kind, which is
  // exactly what FlagValues<T> describes; TypeScript cannot follow that through a Map.
  const result = Object.fromEntries(values) as FlagValues<T>;
  return { kind: "ok", values: result, set, rest: args.slice(i) };
}

function fail(message: string): { kind: "error"; message: string } {
  return { kind: "error", message };
}

type ValueResult =
  | { readonly ok: true; readonly value: string | bigint }
  | { readonly ok: false; readonly error: NumberError };

function parseValue(kind: "string" | "int" | "uint", text: string): ValueResult {
  if (kind === "string") return { ok: true, value: text };
  const parsed = kind === "int" ? parseGoInt(text) : parseGoUint(text);
  return parsed.ok ? { ok: true, value: parsed.value } : parsed;
}

/**
 * Problems that make a table unusable, as Go's `FlagSet.Var` would panic on them: a
 * name that starts with `-`, contains `=`, is empty, or is declared twice.
 */
export function flagTableProblems(table: readonly FlagSpec[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const { name } of table) {
    if (name === "") problems.push("a flag has an empty name");
    if (name.startsWith("-")) problems.push(`flag ${goQuote(name)} begins with -`);
    if (name.includes("=")) problems.push(`flag ${goQuote(name)} contains =`);
    if (seen.has(name)) problems.push(`flag redefined: ${name}`);
    seen.add(name);
  }
  return problems;
}

// ---------------------------------------------------------------------------------
// strconv: ParseBool, ParseInt(s, 0, 64), ParseUint(s, 0, 64), Quote
// ---------------------------------------------------------------------------------

/** Go's `strconv.ParseBool`: the twelve spellings it accepts, else `undefined`. */
export function parseGoBool(text: string): boolean | undefined {
  switch (text) {
    case "1":
    case "t":
    case "T":
    case "true":
    case "TRUE":
    case "True":
      return true;
    case "0":
    case "f":
    case "F":
    case "false":
    case "FALSE":
    case "False":
      return false;
  }
  return undefined;
}

/** The reasons the `flag` package gives for a number it cannot take. */
export type NumberError = "parse error" | "value out of range";

/** A parsed number or the reason it was refused. */
export type NumberResult =
  | { readonly ok: true; readonly value: bigint }
  | { readonly ok: false; readonly error: NumberError };

const SYNTAX: NumberResult = { ok: false, error: "parse error" };
const RANGE: NumberResult = { ok: false, error: "value out of range" };
const MAX_UINT64 = (1n << 64n) - 1n;
const INT64_CUTOFF = 1n << 63n;

/**
 * Go's `strconv.ParseUint(text, 0, 64)`: base from the prefix (`0x`, `0o`, `0b`, a
 * bare leading `0` = octal), underscores only as digit separators after a prefix, and
 * the same error precedence (an overflow is reported before a later bad digit).
 */
export function parseGoUint(text: string): NumberResult {
  if (text === "") return SYNTAX;
  let base = 10;
  let digits = text;
  if (text[0] === "0") {
    const prefix = text.length >= 3 ? lowerAscii(text.charCodeAt(1)) : 0;
    if (prefix === 0x62) [base, digits] = [2, text.slice(2)];
    else if (prefix === 0x6f) [base, digits] = [8, text.slice(2)];
    else if (prefix === 0x78) [base, digits] = [16, text.slice(2)];
    else [base, digits] = [8, text.slice(1)];
  }
  const bigBase = BigInt(base);
  let underscores = false;
  let n = 0n;
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i);
    let digit: number;
    if (c === 0x5f) {
      underscores = true;
      continue;
    } else if (c >= 0x30 && c <= 0x39) {
      digit = c - 0x30;
    } else {
      const lower = lowerAscii(c);
      if (lower < 0x61 || lower > 0x7a) return SYNTAX;
      digit = lower - 0x61 + 10;
    }
    if (digit >= base) return SYNTAX;
    n = n * bigBase + BigInt(digit);
    if (n > MAX_UINT64) return RANGE;
  }
  if (underscores && !underscoresWellPlaced(text)) return SYNTAX;
  return { ok: true, value: n };
}

/** Go's `strconv.ParseInt(text, 0, 64)`: an optional sign, then as {@linkcode parseGoUint}. */
export function parseGoInt(text: string): NumberResult {
  if (text === "") return SYNTAX;
  let negative = false;
  let magnitudeText = text;
  if (text[0] === "+") magnitudeText = text.slice(1);
  else if (text[0] === "-") [negative, magnitudeText] = [true, text.slice(1)];
  const magnitude = parseGoUint(magnitudeText);
  if (!magnitude.ok && magnitude.error === "parse error") return SYNTAX;
  const value = magnitude.ok ? magnitude.value : MAX_UINT64;
  if (!negative && value >= INT64_CUTOFF) return RANGE;
  if (negative && value > INT64_CUTOFF) return RANGE;
  return { ok: true, value: negative ? -value : value };
}

/** `c | 0x20`, the way Go's strconv lower-cases a byte before comparing it. */
function lowerAscii(c: number): number {
  return c | 0x20;
}

/** Go's `underscoreOK`: every `_` sits between digits (a base prefix counts as one). */
function underscoresWellPlaced(text: string): boolean {
  let s = text;
  if (s.length >= 1 && (s[0] === "-" || s[0] === "+")) s = s.slice(1);
  let saw: "^" | "0" | "_" | "!" = "^";
  let i = 0;
  let hex = false;
  if (s.length >= 2 && s[0] === "0") {
    const prefix = lowerAscii(s.charCodeAt(1));
    if (prefix === 0x62 || prefix === 0x6f || prefix === 0x78) {
      i = 2;
      saw = "0";
      hex = prefix === 0x78;
    }
  }
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const lower = lowerAscii(c);
    if ((c >= 0x30 && c <= 0x39) || (hex && lower >= 0x61 && lower <= 0x66)) {
      saw = "0";
      continue;
    }
    if (c === 0x5f) {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const SIMPLE_ESCAPES: Readonly<Record<number, string>> = {
  0x07: "\\a",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x0b: "\\v",
};

/**
 * Go's `strconv.Quote` (what `%q` prints): printable characters as they are, the rest
 * escaped. "Printable" is Unicode categories L, M, N, P, S plus the ASCII space, as in
 * Go; characters assigned after Unicode 13 (Go 1.19's tables) may differ. A lone
 * surrogate is shown as the bytes Go would see for it (`\xed\xa0\x80`).
 */
export function goQuote(text: string): string {
  let out = '"';
  for (const char of text) {
    const cp = char.codePointAt(0) ?? 0;
    if (cp === 0x22 || cp === 0x5c) {
      out += "\\" + char;
    } else if (cp >= 0x20 && cp < 0x7f) {
      out += char;
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
      const bytes = [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
      out += bytes.map((b) => "\\x" + hex(b, 2)).join("");
    } else if (cp >= 0x80 && PRINTABLE.test(char)) {
      out += char;
    } else if (SIMPLE_ESCAPES[cp] !== undefined) {
      out += SIMPLE_ESCAPES[cp];
    } else if (cp < 0x20 || cp === 0x7f) {
      out += "\\x" + hex(cp, 2);
    } else if (cp < 0x10000) {
      out += "\\u" + hex(cp, 4);
    } else {
      out += "\\U" + hex(cp, 8);
    }
  }
  return out + '"';
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, "0");
}
