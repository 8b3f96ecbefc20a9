/**
 * The Unicode classes Go 1.26 accepts in `\p{...}`, with the sets of its Unicode version
 * (15.0.0, generated into unicode_data.ts from the Unicode Character Database; nothing
 * from V8's tables). Sets are built on first use and cached, so an allowlist without `\p`
 * costs nothing.
 *
 * Go's lookup (regexp/syntax `unicodeTable`, Go 1.25+): the name is made canonical (`_`,
 * `-` and spaces dropped, first letter upper case, the rest lower case), then looked up
 * as `Any`, `Assigned`, `ASCII`, `LC`, a category, a script, a category alias (`Letter`,
 * `digit`, ...), and a script by its canonical name (`Old_Italic` as `Olditalic`).
 *
 * @module
 */

import { type CodeSet, foldClosure, MAX_RUNE, negate } from "./codeset.ts";
import { CATEGORIES, SCRIPTS } from "./unicode_data.ts";

/**
 * Go's `unicode.CategoryAliases` (Go 1.25+): the long names of the general categories,
 * and the short aliases Unicode gives some of them (PropertyValueAliases.txt, `gc`).
 */
const CATEGORY_ALIASES: Record<string, string> = {
  Cased_Letter: "LC",
  Close_Punctuation: "Pe",
  Combining_Mark: "M",
  Connector_Punctuation: "Pc",
  Control: "Cc",
  Currency_Symbol: "Sc",
  Dash_Punctuation: "Pd",
  Decimal_Number: "Nd",
  Enclosing_Mark: "Me",
  Final_Punctuation: "Pf",
  Format: "Cf",
  Initial_Punctuation: "Pi",
  Letter: "L",
  Letter_Number: "Nl",
  Line_Separator: "Zl",
  Lowercase_Letter: "Ll",
  Mark: "M",
  Math_Symbol: "Sm",
  Modifier_Letter: "Lm",
  Modifier_Symbol: "Sk",
  Nonspacing_Mark: "Mn",
  Number: "N",
  Open_Punctuation: "Ps",
  Other: "C",
  Other_Letter: "Lo",
  Other_Number: "No",
  Other_Punctuation: "Po",
  Other_Symbol: "So",
  Paragraph_Separator: "Zp",
  Private_Use: "Co",
  Punctuation: "P",
  Separator: "Z",
  Space_Separator: "Zs",
  Spacing_Mark: "Mc",
  Surrogate: "Cs",
  Symbol: "S",
  Titlecase_Letter: "Lt",
  Unassigned: "Cn",
  Uppercase_Letter: "Lu",
  cntrl: "Cc",
  digit: "Nd",
  punct: "P",
};

/**
 * Go's canonical lookup key for a class name: spaces, `_` and `-` dropped, the first
 * letter upper case and the rest lower case (ASCII only).
 */
export function canonicalClassName(name: string): string {
  let out = "";
  for (const ch of name) {
    if (ch === "_" || ch === "-" || ch === " ") continue;
    const lower = ch >= "A" && ch <= "Z" ? ch.toLowerCase() : ch;
    out += out === "" ? (ch >= "a" && ch <= "z" ? ch.toUpperCase() : ch) : lower;
  }
  return out;
}

/** A class as Go resolves a name: a set, possibly to be negated, and its `(?i)` form. */
export interface UnicodeTable {
  set: CodeSet;
  /** Go inverts the table (`Assigned` is the inverse of `Cn`). */
  negated: boolean;
  /** The set closed under case folding (what Go adds under `(?i)`). */
  folded(): CodeSet;
  /**
   * The set (or with `inverted` its complement) as one array shared by every use of the
   * class alone, never to be modified.
   */
  shared(fold: boolean, inverted: boolean): number[];
}

function decode(encoded: string): number[] {
  const out: number[] = [];
  let prev = 0;
  const parts = encoded.split(",");
  for (let i = 0; i < parts.length; i += 2) {
    const lo = prev + parseInt(parts[i], 36);
    const hi = lo + parseInt(parts[i + 1], 36);
    out.push(lo, hi);
    prev = hi;
  }
  return out;
}

const categoryCache = new Map<string, CodeSet>();

function categorySet(name: string): CodeSet {
  let set = categoryCache.get(name);
  if (set === undefined) {
    set = decode(CATEGORIES[name]);
    categoryCache.set(name, set);
  }
  return set;
}

const categories = new Set(Object.keys(CATEGORIES));
const categoryAliases = new Map(
  Object.entries(CATEGORY_ALIASES).map(([alias, category]) => [
    canonicalClassName(alias),
    category,
  ]),
);
const scriptAliases = new Map(Object.keys(SCRIPTS).map((name) => [canonicalClassName(name), name]));
const tables = new Map<string, UnicodeTable | null>();

function table(set: CodeSet, negated = false): UnicodeTable {
  let folded: CodeSet | undefined;
  const shared = new Map<string, number[]>();
  const t: UnicodeTable = {
    set,
    negated,
    folded: () => folded ??= foldClosure(set),
    shared(fold, inverted) {
      const key = `${fold}${inverted}`;
      let out = shared.get(key);
      if (out === undefined) {
        const base = fold ? t.folded() : set;
        out = inverted ? [...negate(base)] : [...base];
        shared.set(key, out);
      }
      return out;
    },
  };
  return t;
}

/**
 * The class for a name written in `\p{...}` (without a leading `^`), or `undefined`
 * when Go 1.26 does not know the name.
 */
export function unicodeClass(name: string): UnicodeTable | undefined {
  const key = canonicalClassName(name);
  let found = tables.get(key);
  if (found === undefined) {
    found = resolve(key);
    tables.set(key, found);
  }
  return found ?? undefined;
}

function resolve(key: string): UnicodeTable | null {
  switch (key) {
    case "Any":
      return table([0, MAX_RUNE]);
    case "Assigned":
      return table(categorySet("Cn"), true);
    case "Ascii":
      return table([0, 0x7f]);
    case "Lc":
      return table(categorySet("LC"));
  }
  if (categories.has(key)) return table(categorySet(key));
  if (Object.hasOwn(SCRIPTS, key)) return table(decode(SCRIPTS[key]));
  const category = categoryAliases.get(key);
  if (category !== undefined) return table(categorySet(category));
  const script = scriptAliases.get(key);
  if (script !== undefined) return table(decode(SCRIPTS[script]));
  return null;
}
