/**
 * The code points of the Unicode classes Go accepts in `\p{...}`: Go's names, the
 * sets taken from V8's own Unicode tables. Built on first use and cached, so a pattern
 * file without `\p` costs nothing.
 *
 * @module
 */

import { type CodeSet, MAX_RUNE, negate, normalize } from "./codeset.ts";
import { GO_CATEGORIES, GO_SCRIPTS } from "./unicode_data.ts";

/** Scripts that Go learned after the Go release our tables were generated from (Unicode 14, 15). */
const NEWER_GO_SCRIPTS = [
  "Cypro_Minoan",
  "Old_Uyghur",
  "Tangsa",
  "Toto",
  "Vithkuqi",
  "Kawi",
  "Nag_Mundari",
];

/**
 * Go's `unicode.CategoryAliases` (Go 1.25+): the long names of the general categories,
 * and the short aliases Unicode gives some of them.
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
 * Go's lookup key for a class name (Go 1.25+, after Unicode TR18): spaces, `_` and `-`
 * dropped, the first letter upper case and the rest lower case.
 */
export function canonicalClassName(name: string): string {
  let out = "";
  for (const c of name) {
    if (c === "_" || c === "-" || c === " ") continue;
    out += out === "" ? c.toUpperCase() : c.toLowerCase();
  }
  return out;
}

const categories = new Set([...GO_CATEGORIES, "Cn"]);
const scripts = new Set([...GO_SCRIPTS, ...NEWER_GO_SCRIPTS]);
const aliases = new Map(
  Object.entries(CATEGORY_ALIASES).map((
    [alias, category],
  ) => [canonicalClassName(alias), category]),
);
const cache = new Map<string, CodeSet>();
let everyCodePoint: string | undefined;

/** Every code point except the surrogates, in order: the text the property regexps scan. */
function allCodePoints(): string {
  if (everyCodePoint === undefined) {
    const parts: string[] = [];
    for (let start = 0; start <= MAX_RUNE; start += 4096) {
      const chunk: number[] = [];
      for (let cp = start; cp < start + 4096 && cp <= MAX_RUNE; cp++) {
        if (cp < 0xd800 || cp > 0xdfff) chunk.push(cp);
      }
      parts.push(String.fromCodePoint(...chunk));
    }
    everyCodePoint = parts.join("");
  }
  return everyCodePoint;
}

/** The set V8 gives for a `\p{...}` property expression, as code-point ranges. */
function propertySet(property: string): CodeSet {
  const ranges: number[] = [];
  for (const match of allCodePoints().matchAll(new RegExp(`\\p{${property}}+`, "gu"))) {
    const run = match[0];
    const lo = run.codePointAt(0)!;
    const last = lastCodePoint(run);
    if (lo < 0xd800 && last > 0xdfff) ranges.push(lo, 0xd7ff, 0xe000, last);
    else ranges.push(lo, last);
  }
  return normalize(ranges);
}

/** The last code point of `text`, which may end in a surrogate pair. */
function lastCodePoint(text: string): number {
  const tail = text.charCodeAt(text.length - 1);
  const isPair = tail >= 0xdc00 && tail <= 0xdfff && text.length >= 2;
  return text.codePointAt(text.length - (isPair ? 2 : 1))!;
}

/** The set of a general category, as current Go defines it. */
function categorySet(category: string): CodeSet {
  switch (category) {
    case "Cs":
      return [0xd800, 0xdfff]; // the scan text holds no surrogates
    case "C":
      return normalize([...propertySet("General_Category=C"), 0xd800, 0xdfff]);
    case "LC":
      return propertySet("General_Category=LC");
    default:
      return propertySet(`General_Category=${category}`);
  }
}

/**
 * The set for a Go Unicode class name (`L`, `Lu`, `Greek`, `Any`, and since Go 1.25
 * `Letter`, `ASCII`, `Assigned`, `Cn`, `LC`, in any case, ignoring spaces, `_` and
 * `-`), or `undefined` when Go does not know the name.
 */
export function unicodeClass(name: string): CodeSet | undefined {
  const key = canonicalClassName(name);
  const cached = cache.get(key);
  if (cached) return cached;
  let set: CodeSet;
  if (key === "Any") set = [0, MAX_RUNE];
  else if (key === "Assigned") set = negate(categorySet("Cn"));
  else if (key === "Ascii") set = [0, 0x7f];
  else if (key === "Lc") set = categorySet("LC");
  else if (categories.has(key)) set = categorySet(key);
  // Go looks the canonical name up among the script names as they are spelled, so a
  // multi-word script (Old_Italic) is not found: current Go's behaviour, kept.
  else if (scripts.has(key)) set = propertySet(`Script=${key}`);
  else if (aliases.has(key)) set = categorySet(aliases.get(key)!);
  else return undefined;
  cache.set(key, set);
  return set;
}
