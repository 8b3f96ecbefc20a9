/**
 * A linear-time matcher for Go patterns: the parse tree is compiled to an automaton
 * over code points (Thompson's construction, counted repeats expanded as Go expands
 * them), which is run as a lazily built DFA: each state is the set of automaton positions
 * reached so far, built the first time a line needs it and cached, so that the next
 * thousand rules of a ruleset walk a table. A line costs one table step per character
 * once its states are known, and at most one pass over the automaton per character when
 * they are not; no pattern and no line can make it backtrack.
 *
 * Only what a verdict needs is computed: whether the pattern matches anywhere in the line
 * (unanchored, no captures, no match positions), which lets the search stop at the first
 * position where a match is certain.
 *
 * @module
 */

import { foldOrbit } from "./codeset.ts";
import { cleanClass, MAX_RUNE, Op, type Regexp } from "./syntax.ts";

/** The most automaton positions a pattern may compile to (Go's limit is 3,355,443). */
export const MAX_PROGRAM = 4_000_000;

/** A pattern compiles to more positions than {@linkcode MAX_PROGRAM}. */
export class ProgramTooLarge extends Error {}

const MATCH = 0;
const CHAR = 1;
const SPLIT = 2;
const NOP = 3;
const ASSERT = 4;
const FAIL = 5;

const BEGIN_LINE = 1;
const END_LINE = 2;
const BEGIN_TEXT = 4;
const END_TEXT = 8;
const WORD_BOUNDARY = 16;
const NO_WORD_BOUNDARY = 32;

const WORD: readonly number[] = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];

/** An automaton: `kind`, `arg` (set, assertion or second branch) and `next` per position. */
interface Program {
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

// --- Character classes -------------------------------------------------------------------------

/**
 * The code points split into classes that no set of the program tells apart (nor the
 * word characters of `\b`, nor `\n`): the DFA's alphabet.
 */
interface Alphabet {
  /** Start of each elementary interval, ascending; interval i is [starts[i], starts[i+1]). */
  starts: Int32Array;
  /** Class of each elementary interval. */
  classOf: Uint32Array;
  /** Class of each ASCII code point. */
  ascii: Uint32Array;
  /** Class of each BMP code unit ({@linkcode SURROGATE} for surrogates), when few classes. */
  bmp: Uint8Array;
  size: number;
  /** Per set: the sorted classes it contains. */
  setClasses: Int32Array[];
  /** `member[set * size + class]`: whether the set holds the class (when small enough). */
  member: Uint8Array | null;
  isWord: Uint8Array;
  isNewline: Uint8Array;
}

function alphabet(sets: readonly number[][]): Alphabet {
  const all = [...sets, WORD, [10, 10]];
  const bounds = new Set<number>([0]);
  for (const set of all) {
    for (let i = 0; i < set.length; i += 2) {
      bounds.add(set[i]);
      if (set[i + 1] < MAX_RUNE) bounds.add(set[i + 1] + 1);
    }
  }
  const starts = Int32Array.from(bounds).sort();
  const n = starts.length;
  const intervalOf = (cp: number): number => {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= cp) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // Signature of each interval: the list of sets covering it.
  const signature: string[] = new Array(n).fill("");
  const covered: number[][] = [];
  all.forEach((set, id) => {
    const intervals: number[] = [];
    for (let i = 0; i < set.length; i += 2) {
      for (let k = intervalOf(set[i]); k < n && starts[k] <= set[i + 1]; k++) {
        signature[k] += `${id},`;
        intervals.push(k);
      }
    }
    covered.push(intervals);
  });
  const classBySignature = new Map<string, number>();
  const classOf = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    let id = classBySignature.get(signature[k]);
    if (id === undefined) {
      id = classBySignature.size;
      classBySignature.set(signature[k], id);
    }
    classOf[k] = id;
  }
  const size = classBySignature.size;
  const setClasses = covered.slice(0, sets.length).map((intervals) =>
    Int32Array.from(new Set(intervals.map((k) => classOf[k]))).sort()
  );
  const flagOf = (intervals: number[]) => {
    const flags = new Uint8Array(size);
    for (const k of intervals) flags[classOf[k]] = 1;
    return flags;
  };
  const ascii = new Uint32Array(128);
  for (let cp = 0; cp < 128; cp++) ascii[cp] = classOf[intervalOf(cp)];
  const bmp = new Uint8Array(size <= DENSE_CLASSES ? 0x10000 : 0);
  if (size <= DENSE_CLASSES) {
    for (let k = 0; k < n && starts[k] <= 0xffff; k++) {
      const end = k + 1 < n ? Math.min(starts[k + 1], 0x10000) : 0x10000;
      bmp.fill(classOf[k], starts[k], end);
    }
    bmp.fill(SURROGATE, 0xd800, 0xe000);
  }
  let member: Uint8Array | null = null;
  if (sets.length * size <= MAX_MEMBER_TABLE) {
    member = new Uint8Array(sets.length * size);
    setClasses.forEach((classes, set) => {
      for (const k of classes) member![set * size + k] = 1;
    });
  }
  return {
    starts,
    classOf,
    ascii,
    bmp,
    member,
    size,
    setClasses,
    isWord: flagOf(covered[sets.length]),
    isNewline: flagOf(covered[sets.length + 1]),
  };
}

function hasClass(classes: Int32Array, k: number): boolean {
  let lo = 0;
  let hi = classes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (classes[mid] < k) lo = mid + 1;
    else if (classes[mid] > k) hi = mid - 1;
    else return true;
  }
  return false;
}

// --- The lazy DFA ------------------------------------------------------------------------------

/** Transition values: 0 not yet known; n > 0 state n - 1; these two end the search. */
const T_MATCH = -1;
const T_DEAD = -2;

/** Context bits a state carries (only those the program's assertions look at). */
const AT_START = 1;
const PREV_WORD = 2;
const PREV_NEWLINE = 4;

/** Cache limits: past them the cache is dropped and rebuilt as lines need it. */
const MAX_STATES = 10_000;
const MAX_STATE_POSITIONS = 1_000_000;
const MAX_DENSE_ENTRIES = 2_000_000;
/** The largest set-by-class membership table kept (bytes). */
const MAX_MEMBER_TABLE = 1 << 22;
/** Up to this many classes a state's transitions are a dense row; above, a map. */
const DENSE_CLASSES = 255;
/** In the BMP class table: a surrogate, to be decoded with the unit after it. */
const SURROGATE = 255;

/** Answers "does the program match anywhere in this line?" in linear time. */
export class Matcher {
  readonly #p: Program;
  readonly #a: Alphabet;
  readonly #dense: boolean;
  readonly #contextMask: number;
  /**
   * The states: state i's positions are `#pool[#offset[i] .. #offset[i + 1])`, its context
   * `#context[i]`. One pool for all, so that making a state allocates nothing.
   */
  #count = 0;
  #pool = new Int32Array(64);
  #offset = new Int32Array(65);
  #context = new Uint8Array(64);
  #byHash = new Map<number, number[]>();
  #trans: Int32Array = new Int32Array(0);
  #sparse: Map<number, number>[] = [];
  #eot: Int8Array = new Int8Array(0);
  #initial = -1;
  /** Counts cache resets. */
  #epoch = 0;
  // Scratch space for closures.
  readonly #mark: Int32Array;
  readonly #markNext: Int32Array;
  #generation = 0;
  readonly #stack: number[] = [];

  constructor(program: Program) {
    this.#p = program;
    this.#a = alphabet(program.sets);
    this.#dense = this.#a.size <= DENSE_CLASSES;
    const a = program.asserts;
    this.#contextMask = (a & (BEGIN_LINE | BEGIN_TEXT) ? AT_START : 0) |
      (a & (WORD_BOUNDARY | NO_WORD_BOUNDARY) ? PREV_WORD : 0) |
      (a & BEGIN_LINE ? PREV_NEWLINE : 0) | (program.anchored ? AT_START : 0);
    const size = program.kind.length;
    this.#mark = new Int32Array(size);
    this.#markNext = new Int32Array(size);
    this.#collected = new Int32Array(size);
  }

  /** The number of positions of the automaton (for diagnostics). */
  get size(): number {
    return this.#p.kind.length;
  }

  /** Whether the program matches anywhere in `line`. */
  test(line: string): boolean {
    // Go's fast paths: too short to match (UTF-16 units are never fewer than code
    // points), or the literal every match starts with is not there.
    if (line.length < this.#p.minLength) return false;
    let from = 0;
    let s: number;
    if (this.#p.prefix !== "") {
      from = line.indexOf(this.#p.prefix);
      if (from < 0) return false;
      s = from === 0 ? this.#startState() : this.#startAfter(line.charCodeAt(from - 1));
    } else {
      s = this.#startState();
    }
    if (!this.#dense) return this.#testSparse(line, s, from);
    const bmp = this.#a.bmp;
    const k = this.#a.size;
    let trans = this.#trans;
    // `row` is s * k: a dense transition holds the next state's row + 1.
    let row = s * k;
    const n = line.length;
    for (let i = from; i < n; i++) {
      const unit = line.charCodeAt(i);
      let cls = bmp[unit];
      if (cls === SURROGATE) {
        const low = line.charCodeAt(i + 1); // NaN past the end
        if (unit <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
          cls = this.#classOf(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00));
          i++;
        } else {
          cls = this.#classOf(unit); // a lone surrogate: never in our decoded rules
        }
      }
      let t = trans[row + cls];
      if (t <= 0) {
        if (t === 0) {
          t = this.#step(row / k, cls);
          if (t > 0) t = (t - 1) * k + 1;
          trans = this.#trans;
        }
        if (t < 0) return t === T_MATCH;
      }
      row = t - 1;
    }
    return this.#atEnd(row / k);
  }

  #testSparse(line: string, s: number, from: number): boolean {
    const n = line.length;
    for (let i = from; i < n; i++) {
      let cp = line.charCodeAt(i);
      if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < n) {
        const low = line.charCodeAt(i + 1);
        if (low >= 0xdc00 && low <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          i++;
        }
      }
      const cls = cp < 128 ? this.#a.ascii[cp] : this.#classOf(cp);
      let t = this.#sparse[s].get(cls) ?? 0;
      if (t === 0) t = this.#step(s, cls);
      if (t < 0) return t === T_MATCH;
      s = t - 1;
    }
    return this.#atEnd(s);
  }

  /** Whether state `s` matches at the end of the line. */
  #atEnd(s: number): boolean {
    let end = this.#eot[s];
    if (end === 0) {
      end = this.#closure(s, -1) === T_MATCH ? 1 : -1;
      this.#eot[s] = end;
    }
    return end === 1;
  }

  #classOf(cp: number): number {
    const starts = this.#a.starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= cp) lo = mid;
      else hi = mid - 1;
    }
    return this.#a.classOf[lo];
  }

  #startState(): number {
    if (this.#initial < 0) {
      this.#initial = this.#state(this.#collected, 0, AT_START & this.#contextMask);
    }
    return this.#initial;
  }

  /** The state where a search starts in mid-line, after the UTF-16 unit `before`. */
  #startAfter(before: number): number {
    const word = before < 128 && isWordByte(before);
    const context = (word ? PREV_WORD : 0) | (before === 10 ? PREV_NEWLINE : 0);
    return this.#state(this.#collected, 0, context & this.#contextMask);
  }

  /** The transition from state `s` on class `cls`, computed and cached. */
  #step(s: number, cls: number): number {
    const epoch = this.#epoch;
    let t = this.#closure(s, cls);
    if (t >= 0) {
      sortPrefix(this.#collected, t);
      t = this.#state(this.#collected, t, this.#contextAfter(cls)) + 1;
    }
    // A cache reset inside #state dropped `s`: nothing to record it in.
    if (epoch === this.#epoch) {
      if (this.#dense) this.#trans[s * this.#a.size + cls] = t > 0 ? (t - 1) * this.#a.size + 1 : t;
      else this.#sparse[s].set(cls, t);
    }
    return t;
  }

  #contextAfter(cls: number): number {
    return ((this.#a.isWord[cls] ? PREV_WORD : 0) | (this.#a.isNewline[cls] ? PREV_NEWLINE : 0)) &
      this.#contextMask;
  }

  /** Positions collected by the last {@linkcode #closure}, sorted. */
  /** Positions collected by the last {@linkcode #closure} (scratch space). */
  #collected: Int32Array;

  /**
   * Follows the empty moves from state `s` (and from the start, where a match may begin)
   * with the next character of class `cls` (-1: the end of the line) in view. Returns
   * {@linkcode T_MATCH}, {@linkcode T_DEAD}, or the number of positions the character
   * leads to (left at the start of `#collected`).
   */
  #closure(s: number, cls: number): number {
    const p = this.#p;
    const { kind, arg, next } = p;
    const a = this.#a;
    const context = this.#context[s];
    const atStart = (context & AT_START) !== 0;
    const prevWord = (context & PREV_WORD) !== 0;
    const nextWord = cls >= 0 && a.isWord[cls] === 1;
    const ok = (atStart ? BEGIN_TEXT : 0) |
      (atStart || (context & PREV_NEWLINE) ? BEGIN_LINE : 0) |
      (cls < 0 ? END_TEXT | END_LINE : a.isNewline[cls] ? END_LINE : 0) |
      (prevWord !== nextWord ? WORD_BOUNDARY : NO_WORD_BOUNDARY);
    const gen = ++this.#generation;
    if (gen === 0x7fffffff) this.#resetMarks();
    const mark = this.#mark;
    const markNext = this.#markNext;
    const stack = this.#stack;
    stack.length = 0;
    const pool = this.#pool;
    for (let i = this.#offset[s], end = this.#offset[s + 1]; i < end; i++) stack.push(pool[i]);
    if (!p.anchored || atStart) stack.push(p.start);
    const collected = this.#collected;
    const member = a.member;
    const size = a.size;
    let count = 0;
    while (stack.length > 0) {
      const pc = stack.pop()!;
      if (mark[pc] === gen) continue;
      mark[pc] = gen;
      switch (kind[pc]) {
        case MATCH:
          return T_MATCH;
        case CHAR:
          if (
            cls >= 0 &&
            (member !== null
              ? member[arg[pc] * size + cls] === 1
              : hasClass(a.setClasses[arg[pc]], cls))
          ) {
            const to = next[pc];
            if (markNext[to] !== gen) {
              markNext[to] = gen;
              collected[count++] = to;
            }
          }
          break;
        case SPLIT:
          stack.push(arg[pc], next[pc]);
          break;
        case NOP:
          stack.push(next[pc]);
          break;
        case ASSERT:
          if (arg[pc] & ok) stack.push(next[pc]);
          break;
      }
    }
    if (count === 0 && p.anchored) return T_DEAD;
    return count;
  }

  #resetMarks(): void {
    this.#mark.fill(0);
    this.#markNext.fill(0);
    this.#generation = 1;
  }

  /** The id of the state (`positions[0, count)`, sorted; `context`), created if new. */
  #state(positions: Int32Array, count: number, context: number): number {
    let h = 0x811c9dc5 ^ context;
    for (let i = 0; i < count; i++) h = Math.imul(h ^ positions[i], 16777619);
    const bucket = this.#byHash.get(h);
    if (bucket !== undefined) {
      for (const id of bucket) {
        if (this.#context[id] === context && this.#holds(id, positions, count)) return id;
      }
    }
    const k = this.#a.size;
    const id = this.#count;
    if (
      id >= MAX_STATES || this.#offset[id] + count > MAX_STATE_POSITIONS ||
      (this.#dense && (id + 1) * k > MAX_DENSE_ENTRIES)
    ) {
      this.#reset();
      return this.#state(positions, count, context);
    }
    const start = this.#offset[id];
    if (this.#pool.length < start + count) this.#pool = grow(this.#pool, start + count);
    this.#pool.set(positions.subarray(0, count), start);
    if (this.#offset.length < id + 2) this.#offset = grow(this.#offset, id + 2);
    this.#offset[id + 1] = start + count;
    if (this.#context.length < id + 1) this.#context = grow(this.#context, id + 1);
    this.#context[id] = context;
    this.#count = id + 1;
    if (bucket === undefined) this.#byHash.set(h, [id]);
    else bucket.push(id);
    if (this.#dense) {
      if (this.#trans.length < (id + 1) * k) this.#trans = grow(this.#trans, (id + 1) * k);
    } else {
      this.#sparse.push(new Map());
    }
    if (this.#eot.length <= id) this.#eot = grow(this.#eot, id + 1);
    return id;
  }

  /** Whether state `id` holds exactly `positions[0, count)`. */
  #holds(id: number, positions: Int32Array, count: number): boolean {
    const start = this.#offset[id];
    if (this.#offset[id + 1] - start !== count) return false;
    for (let i = 0; i < count; i++) if (this.#pool[start + i] !== positions[i]) return false;
    return true;
  }

  #reset(): void {
    this.#epoch++;
    this.#count = 0;
    this.#byHash = new Map();
    this.#trans = new Int32Array(0);
    this.#sparse = [];
    this.#eot = new Int8Array(0);
    this.#initial = -1;
  }
}

function isWordByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || c === 0x5f ||
    (c >= 0x61 && c <= 0x7a);
}

/** A copy of `a` with room for at least `size` elements (twice the length, or more). */
function grow<T extends Int32Array | Uint8Array | Int8Array>(a: T, size: number): T {
  const bigger = new (a.constructor as new (n: number) => T)(Math.max(size, a.length * 2));
  bigger.set(a);
  return bigger;
}

/** Sorts `a[0, count)` ascending (insertion sort: state sets are mostly small). */
function sortPrefix(a: Int32Array, count: number): void {
  if (count > 32) {
    a.subarray(0, count).sort();
    return;
  }
  for (let i = 1; i < count; i++) {
    const x = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > x) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = x;
  }
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
