/**
 * Matching one table's rules against its allowlist: the patterns of the table's file
 * and of `global`, compiled into one automaton so a rule costs one pass instead of one
 * pass per pattern. Which pattern matched is found only when it is asked for (`-v 3`
 * logs it).
 *
 * @module
 */

import type { PatternEntry } from "./allowlist.ts";
import { Matcher } from "./engine.ts";
import { compileProgram, MAX_PROGRAM, programSize } from "./program.ts";
import { treeOf } from "./regexp.ts";
import type { Regexp } from "./syntax.ts";

/**
 * Joined automata by the pattern texts they join, kept across checks: a check makes a new
 * TableMatcher per table, and the automaton's cached states are what makes it fast, so an
 * unchanged allowlist keeps them. The most recently used few are kept (two families of five
 * tables each, and room for a change of patterns).
 */
const joinedCache = new Map<string, Matcher | null>();
const JOINED_CACHE_SIZE = 12;

function cachedJoin(key: string, make: () => Matcher | null): Matcher | null {
  let joined = joinedCache.get(key);
  if (joined !== undefined) {
    joinedCache.delete(key); // most recently used last
  } else {
    joined = make();
    if (joinedCache.size >= JOINED_CACHE_SIZE) {
      joinedCache.delete(joinedCache.keys().next().value!);
    }
  }
  joinedCache.set(key, joined);
  return joined;
}

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
    for (const entry of this.#entries) {
      const tree = treeOf(entry.regexp);
      if (tree === undefined) return this.#joined = null;
      trees.push(tree);
    }
    const key = JSON.stringify(this.#entries.map((entry) => entry.regexp.source));
    this.#joined = cachedJoin(key, () => {
      const size = trees.reduce((sum, tree) => sum + programSize(tree) + 1, 0);
      return size > MAX_PROGRAM ? null : new Matcher(compileProgram(trees));
    });
    return this.#joined;
  }
}
