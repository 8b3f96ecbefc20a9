/**
 * Go patterns as automata over code points: Thompson's construction from the parse tree,
 * counted repeats expanded as Go expands them (`x{2,4}` is `xx(x(x)?)?`), equal character
 * sets shared. engine.ts runs them. Also what Go knows of a pattern before matching: the
 * shortest text it can match and the literal every match starts with.
 *
 * @module
 */

import { foldOrbit } from "./codeset.ts";
import { cleanClass, MAX_RUNE, Op, type Regexp } from "./syntax.ts";

/** The most automaton positions a pattern may compile to (Go's limit is 3,355,443). */
export const MAX_PROGRAM = 4_000_000;

/** A pattern compiles to more positions than {@linkcode MAX_PROGRAM}. */
export class ProgramTooLarge extends Error {}

/** What a position does: match; read a character of set `arg`; branch to `next` and `arg`;
 * go on; go on if assertion `arg` holds; fail. */
export const MATCH = 0;
export const CHAR = 1;
export const SPLIT = 2;
export const NOP = 3;
export const ASSERT = 4;
export const FAIL = 5;

/** Assertions, as bits (`^` `$` with (?m), `\A` `\z`, `\b` `\B`). */
export const BEGIN_LINE = 1;
export const END_LINE = 2;
export const BEGIN_TEXT = 4;
export const END_TEXT = 8;
export const WORD_BOUNDARY = 16;
export const NO_WORD_BOUNDARY = 32;

/** An automaton: `kind`, `arg` (set, assertion or second branch) and `next` per position. */
export interface Program {
  kind: Uint8Array;
  arg: Int32Array;
  next: Int32Array;
  start: number;
  /** Every path from `start` passes a `\A`/`^` (outside (?m)) before reading anything. */
  anchored: boolean;
  /** Assertions used, as bits (decides which context the DFA states carry). */
  asserts: number;
  sets: number[][];
  /** No match is shorter than this many code points. */
  minLength: number;
  /** Every match begins with this text (Go's literal prefix); "" when none is known. */
  prefix: string;
}

/** Builds a {@linkcode Program}, interning equal character sets. */
class Builder {
  kind = new Uint8Array(64);
  arg = new Int32Array(64);
  next = new Int32Array(64);
  length = 0;
  sets: number[][] = [];
  asserts = 0;
  #setByHash = new Map<number, number[]>();
  #setOfRunes = new Map<number[], number>();
  #literalSets = new Map<number, number>();
  #foldedSets = new Map<number, number>();

  emit(kind: number, arg: number, next: number): number {
    const pc = this.length;
    if (pc === this.kind.length) {
      if (pc >= MAX_PROGRAM) {
        throw new ProgramTooLarge(
          `the pattern compiles to more than ${MAX_PROGRAM} automaton positions`,
        );
      }
      const size = Math.min(pc * 2, MAX_PROGRAM);
      const grow = <T extends Uint8Array | Int32Array>(a: T, b: T): T => (b.set(a), b);
      this.kind = grow(this.kind, new Uint8Array(size));
      this.arg = grow(this.arg, new Int32Array(size));
      this.next = grow(this.next, new Int32Array(size));
    }
    this.kind[pc] = kind;
    this.arg[pc] = arg;
    this.next[pc] = next;
    this.length = pc + 1;
    return pc;
  }

  intern(set: number[]): number {
    let h = 0x811c9dc5;
    for (const x of set) h = Math.imul(h ^ x, 16777619);
    const bucket = this.#setByHash.get(h);
    if (bucket !== undefined) {
      for (const id of bucket) {
        const other = this.sets[id];
        if (other.length === set.length && other.every((x, i) => x === set[i])) return id;
      }
    }
    this.sets.push(set);
    const id = this.sets.length - 1;
    if (bucket === undefined) this.#setByHash.set(h, [id]);
    else bucket.push(id);
    return id;
  }

  /** The set of a class node; nodes often share one array (the parser interns them). */
  setOfRunes(runes: number[]): number {
    let id = this.#setOfRunes.get(runes);
    if (id === undefined) {
      id = this.intern(isClean(runes) ? runes : cleanClass([...runes]));
      this.#setOfRunes.set(runes, id);
    }
    return id;
  }

  literalSet(r: number, fold: boolean): number {
    const cache = fold ? this.#foldedSets : this.#literalSets;
    let id = cache.get(r);
    if (id === undefined) {
      id = this.intern(fold ? cleanClass(foldOrbit(r).flatMap((o) => [o, o])) : [r, r]);
      cache.set(r, id);
    }
    return id;
  }

  /** Compiles `re` so that it continues at `next`; returns its first position. */
  compile(re: Regexp, next: number): number {
    switch (re.op) {
      case Op.NoMatch:
        return this.emit(FAIL, 0, -1);
      case Op.EmptyMatch:
        return next;
      case Op.Literal: {
        const fold = (re.flags & 1) !== 0;
        for (let i = re.runes.length - 1; i >= 0; i--) {
          next = this.emit(CHAR, this.literalSet(re.runes[i], fold), next);
        }
        return next;
      }
      case Op.CharClass:
        return this.emit(CHAR, this.setOfRunes(re.runes), next);
      case Op.AnyCharNotNL:
        return this.emit(CHAR, this.intern([0, 9, 11, MAX_RUNE]), next);
      case Op.AnyChar:
        return this.emit(CHAR, this.intern([0, MAX_RUNE]), next);
      case Op.BeginLine:
        return this.assert(BEGIN_LINE, next);
      case Op.EndLine:
        return this.assert(END_LINE, next);
      case Op.BeginText:
        return this.assert(BEGIN_TEXT, next);
      case Op.EndText:
        return this.assert(END_TEXT, next);
      case Op.WordBoundary:
        return this.assert(WORD_BOUNDARY, next);
      case Op.NoWordBoundary:
        return this.assert(NO_WORD_BOUNDARY, next);
      case Op.Capture:
        return this.compile(re.subs[0], next);
      case Op.Star:
        return this.star(re.subs[0], next);
      case Op.Plus:
        return this.plus(re.subs[0], next);
      case Op.Quest:
        return this.emit(SPLIT, next, this.compile(re.subs[0], next));
      case Op.Repeat:
        return this.repeat(re.subs[0], re.min, re.max, next);
      case Op.Concat:
        for (let i = re.subs.length - 1; i >= 0; i--) next = this.compile(re.subs[i], next);
        return next;
      case Op.Alternate: {
        let first = this.compile(re.subs[re.subs.length - 1], next);
        for (let i = re.subs.length - 2; i >= 0; i--) {
          first = this.emit(SPLIT, first, this.compile(re.subs[i], next));
        }
        return first;
      }
    }
    throw new Error(`unexpected op ${re.op} in a parsed pattern`);
  }

  assert(what: number, next: number): number {
    this.asserts |= what;
    return this.emit(ASSERT, what, next);
  }

  /** `x*`: a branch that either enters the body (which loops back) or goes on. */
  star(sub: Regexp, next: number): number {
    const loop = this.emit(SPLIT, next, -1);
    const body = this.compile(sub, loop);
    this.next[loop] = body;
    return loop;
  }

  plus(sub: Regexp, next: number): number {
    const loop = this.emit(SPLIT, next, -1);
    const body = this.compile(sub, loop);
    this.next[loop] = body;
    return body;
  }

  /** `x{min,max}` (max -1: unbounded) as Go expands it: `x...x(x(x)?)?` or `x...xx+`. */
  repeat(sub: Regexp, min: number, max: number, next: number): number {
    if (max === -1) {
      if (min === 0) return this.star(sub, next);
      next = this.plus(sub, next);
      for (let i = 1; i < min; i++) next = this.compile(sub, next);
      return next;
    }
    const tail = next;
    for (let i = 0; i < max - min; i++) next = this.emit(SPLIT, tail, this.compile(sub, next));
    for (let i = 0; i < min; i++) next = this.compile(sub, next);
    return next;
  }

  program(start: number, minLength: number): Program {
    const kind = this.kind.slice(0, this.length);
    const arg = this.arg.slice(0, this.length);
    const next = this.next.slice(0, this.length);
    const anchored = isAnchored(kind, arg, next, start);
    return {
      kind,
      arg,
      next,
      start,
      anchored,
      asserts: this.asserts,
      sets: this.sets,
      minLength,
      prefix: anchored ? "" : literalPrefix(kind, arg, next, start, this.sets),
    };
  }
}

/** Whether ranges are sorted, disjoint and not adjacent. */
function isClean(r: readonly number[]): boolean {
  for (let i = 0; i < r.length; i += 2) {
    if (r[i] > r[i + 1] || (i > 0 && r[i] <= r[i - 1] + 1)) return false;
  }
  return true;
}

/** Whether every path from `start` passes a text-start assertion before anything else. */
function isAnchored(kind: Uint8Array, arg: Int32Array, next: Int32Array, start: number): boolean {
  const seen = new Set<number>();
  const stack = [start];
  while (stack.length > 0) {
    const pc = stack.pop()!;
    if (seen.has(pc)) continue;
    seen.add(pc);
    switch (kind[pc]) {
      case MATCH:
      case CHAR:
        return false;
      case SPLIT:
        stack.push(next[pc], arg[pc]);
        break;
      case NOP:
        stack.push(next[pc]);
        break;
      case ASSERT:
        if (arg[pc] !== BEGIN_TEXT) stack.push(next[pc]);
        break;
    }
  }
  return true;
}

/** Compiles parse trees into one automaton that matches when any of them does. */
export function compileProgram(trees: readonly Regexp[]): Program {
  const b = new Builder();
  const match = b.emit(MATCH, 0, -1);
  if (trees.length === 0) return b.program(b.emit(FAIL, 0, -1), Infinity);
  let start = b.compile(trees[trees.length - 1], match);
  for (let i = trees.length - 2; i >= 0; i--) {
    start = b.emit(SPLIT, start, b.compile(trees[i], match));
  }
  return b.program(start, Math.min(...trees.map(minLength)));
}

/** The fewest code points a match of `re` can span (Infinity: it never matches). */
export function minLength(re: Regexp): number {
  switch (re.op) {
    case Op.NoMatch:
      return Infinity;
    case Op.Literal:
      return re.runes.length;
    case Op.CharClass:
      return re.runes.length === 0 ? Infinity : 1;
    case Op.AnyChar:
    case Op.AnyCharNotNL:
      return 1;
    case Op.Capture:
    case Op.Plus:
      return minLength(re.subs[0]);
    case Op.Repeat:
      return re.min === 0 ? 0 : re.min * minLength(re.subs[0]);
    case Op.Concat:
      return re.subs.reduce((sum, sub) => sum + minLength(sub), 0);
    case Op.Alternate:
      return Math.min(...re.subs.map(minLength));
    default:
      return 0;
  }
}

/** The code points every path from `start` reads first, one by one, while there is only one. */
function literalPrefix(
  kind: Uint8Array,
  arg: Int32Array,
  next: Int32Array,
  start: number,
  sets: readonly number[][],
): string {
  let out = "";
  for (let pc = start; out.length < 64;) {
    if (kind[pc] === NOP) {
      pc = next[pc];
      continue;
    }
    if (kind[pc] !== CHAR) break;
    const set = sets[arg[pc]];
    if (set.length !== 2 || set[0] !== set[1]) break;
    out += String.fromCodePoint(set[0]);
    pc = next[pc];
  }
  return out;
}

/** How many automaton positions {@linkcode compileProgram} makes for `re`. */
export function programSize(re: Regexp): number {
  const sub = () => programSize(re.subs[0]);
  switch (re.op) {
    case Op.EmptyMatch:
      return 0;
    case Op.Literal:
      return re.runes.length;
    case Op.Capture:
      return sub();
    case Op.Star:
    case Op.Plus:
    case Op.Quest:
      return 1 + sub();
    case Op.Repeat: {
      const s = sub();
      if (re.max === -1) return re.min === 0 ? 1 + s : re.min * s + 1;
      return re.max * s + (re.max - re.min);
    }
    case Op.Concat:
      return re.subs.reduce((sum, s) => sum + programSize(s), 0);
    case Op.Alternate:
      return re.subs.reduce((sum, s) => sum + programSize(s), 0) + re.subs.length - 1;
    default:
      return 1;
  }
}
