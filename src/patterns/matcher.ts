/**
 * Matching one table's rules against its allowlist: the patterns of the table's file
 * and of `global`, joined into one V8 regexp so a rule costs one regexp run instead of
 * one run per pattern. Which pattern matched is found only when it is asked for
 * (`-v 3` logs it).
 *
 * @module
 */

import type { PatternEntry } from "./allowlist.ts";
import { compileLinear, hasAstral, sourceFor } from "./regexp.ts";

/** Answers "does any pattern allow this rule?" for one table. */
export class TableMatcher {
  readonly #entries: readonly PatternEntry[];
  #bmp: RegExp | null | undefined;
  #full: RegExp | null | undefined;

  constructor(entries: readonly PatternEntry[]) {
    this.#entries = entries;
  }

  /** Whether any pattern matches `line` (a rule line, never holding `\n`). */
  matches(line: string): boolean {
    const astral = hasAstral(line);
    const combined = astral ? this.#combined("full") : this.#combined("bmp");
    if (combined) return combined.test(line);
    return this.#entries.some((entry) => entry.regexp.test(line));
  }

  /** The first pattern (in file order) that matches `line`, for logging. */
  firstMatch(line: string): PatternEntry | undefined {
    return this.#entries.find((entry) => entry.regexp.test(line));
  }

  /** The joined regexp, or null when there is nothing to join or V8 refuses the join. */
  #combined(variant: "bmp" | "full"): RegExp | null {
    const cached = variant === "bmp" ? this.#bmp : this.#full;
    if (cached !== undefined) return cached;
    let joined: RegExp | null = null;
    const sources = this.#entries.map((entry) => sourceFor(entry.regexp, variant));
    if (sources.length === 0) {
      joined = new RegExp("[]"); // no patterns: nothing is allowed
    } else if (sources.every((s) => s !== undefined)) {
      try {
        joined = compileLinear(sources.map((s) => `(?:${s})`).join("|"));
      } catch {
        joined = null; // too large to join: match pattern by pattern
      }
    }
    if (variant === "bmp") this.#bmp = joined;
    else this.#full = joined;
    return joined;
  }
}
