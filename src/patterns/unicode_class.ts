/**
 * The code points of the Unicode classes Go accepts in `\p{...}`: Go's names, the
 * sets taken from V8's own Unicode tables. Built on first use and cached, so a pattern
 * file without `\p` costs nothing.
 *
 * @module
 */

import { type CodeSet, MAX_RUNE, normalize } from "./codeset.ts";
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

const categories = new Set(GO_CATEGORIES);
const scripts = new Set([...GO_SCRIPTS, ...NEWER_GO_SCRIPTS]);
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

/**
 * The set for a Go Unicode class name (`L`, `Lu`, `Greek`, `Any`), or `undefined`
 * when Go does not know the name.
 */
export function unicodeClass(name: string): CodeSet | undefined {
  const cached = cache.get(name);
  if (cached) return cached;
  let set: CodeSet;
  if (name === "Any") {
    set = [0, MAX_RUNE];
  } else if (name === "Cs") {
    set = [0xd800, 0xdfff];
  } else if (name === "C") {
    // Go's C is Cc, Cf, Co and Cs; unassigned code points (Cn) are not in it.
    set = normalize([
      ...propertySet("Cc"),
      ...propertySet("Cf"),
      ...propertySet("Co"),
      0xd800,
      0xdfff,
    ]);
  } else if (categories.has(name)) {
    set = propertySet(`General_Category=${name}`);
  } else if (scripts.has(name)) {
    set = propertySet(`Script=${name}`);
  } else {
    return undefined;
  }
  cache.set(name, set);
  return set;
}
