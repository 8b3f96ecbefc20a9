/**
 * Matching one table's rules against its allowlist: the patterns of the table's file
 * and of `global`, compiled into one automaton so a rule costs one pass instead of one
 * pass per pattern. Which pattern matched is found only when it is asked for (`-v 3`
 * logs it).
 *
 * @module
 */

import type { PatternEntry } from "./allowlist.ts";
import { compileProgram, Matcher, MAX_PROGRAM, programSize } from "./engine.ts";
import { treeOf } from "./regexp.ts";
import type { Regexp } from "./syntax.ts";

/** Answers "does any pattern allow this rule?" for one table. */
export class TableMatcher {
  readonly #entries: readonly PatternEntry[];
  #joined: Matcher | null | undefined;

  constructor(entries: readonly PatternEntry[]) {
    this.#entries = entries;
  }

  /** Whether any pattern matches `line` (a rule line, never holding `\n`). */
  matches(line: string): boolean {
    const joined = this.#joined === undefined ? this.#join() : this.#joined;
    if (joined !== null) return joined.test(line);
    return this.#entries.some((entry) => entry.regexp.test(line));
  }

  /** The first pattern (in file order) that matches `line`, for logging. */
  firstMatch(line: string): PatternEntry | undefined {
    return this.#entries.find((entry) => entry.regexp.test(line));
  }

  /** Joins the patterns once; null when they are too large together (then one by one). */
  #join(): Matcher | null {
    const trees: Regexp[] = [];
    let size = 0;
    for (const entry of this.#entries) {
      const tree = treeOf(entry.regexp);
      if (tree === undefined) return this.#joined = null;
      size += programSize(tree) + 1;
      trees.push(tree);
    }
    this.#joined = size > MAX_PROGRAM ? null : new Matcher(compileProgram(trees));
    return this.#joined;
  }
}
