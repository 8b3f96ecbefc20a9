/**
 * Matching one table's rules against its allowlist: the patterns of the table's file
 * and of `global`, joined into one V8 regexp so a rule costs one regexp run instead of
 * one run per pattern. Which pattern matched is found only when it is asked for
 * (`-v 3` logs it).
 *
 * @module
 */

import type { PatternEntry } from "./allowlist.ts";
import { compileLinearOnly, compileNative, hasAstral, sourceFor } from "./regexp.ts";

/** The joined regexp of a table's patterns, per kind of line. */
interface Joined {
  /** For lines without surrogate pairs, or for every line when `sameForAstral`. */
  bmp: RegExp;
  /** For lines with surrogate pairs; compiled on first need. */
  full: () => RegExp | null;
  /**
   * Both variants have the same source (no pattern has `.` or a class reaching past
   * the BMP), so no line needs the scan for surrogate pairs.
   */
  sameForAstral: boolean;
}

/** Answers "does any pattern allow this rule?" for one table. */
export class TableMatcher {
  readonly #entries: readonly PatternEntry[];
  #joined: Joined | null | undefined;

  constructor(entries: readonly PatternEntry[]) {
    this.#entries = entries;
  }

  /** Whether any pattern matches `line` (a rule line, never holding `\n`). */
  matches(line: string): boolean {
    const joined = this.#joined === undefined ? this.#join() : this.#joined;
    if (joined !== null) {
      if (joined.sameForAstral || !hasAstral(line)) return joined.bmp.test(line);
      const full = joined.full();
      if (full !== null) return full.test(line);
    }
    return this.#entries.some((entry) => entry.regexp.test(line));
  }

  /** The first pattern (in file order) that matches `line`, for logging. */
  firstMatch(line: string): PatternEntry | undefined {
    return this.#entries.find((entry) => entry.regexp.test(line));
  }

  /** Joins the patterns once; null when they cannot be joined or V8 refuses the join. */
  #join(): Joined | null {
    this.#joined = null;
    if (this.#entries.length === 0) {
      const nothing = new RegExp("[]"); // no patterns: nothing is allowed
      this.#joined = { bmp: nothing, full: () => nothing, sameForAstral: true };
      return this.#joined;
    }
    const bmpSource = joinedSource(this.#entries, "bmp");
    if (bmpSource === undefined) return null;
    let bmp: RegExp;
    try {
      bmp = compileNative(bmpSource);
    } catch {
      return null; // too large to join: match pattern by pattern
    }
    let full: RegExp | null | undefined;
    const fullSource = joinedSource(this.#entries, "full");
    this.#joined = {
      bmp,
      sameForAstral: fullSource === bmpSource,
      full: () => {
        if (full !== undefined) return full;
        try {
          full = fullSource === undefined ? null : compileLinearOnly(fullSource);
        } catch {
          full = null;
        }
        return full;
      },
    };
    return this.#joined;
  }
}

/** One source matching when any entry matches, or undefined when an entry has none. */
function joinedSource(
  entries: readonly PatternEntry[],
  variant: "bmp" | "full",
): string | undefined {
  const sources: string[] = [];
  for (const entry of entries) {
    const source = sourceFor(entry.regexp, variant);
    if (source === undefined) return undefined;
    sources.push(`(?:${source})`);
  }
  return sources.join("|");
}
