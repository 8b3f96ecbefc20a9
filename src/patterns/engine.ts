/**
 * A linear-time matcher for Go patterns: the automaton program.ts builds from the parse
 * tree is run as a lazily built DFA over code points: each state is the set of automaton positions
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

import {
  ASSERT,
  BEGIN_LINE,
  BEGIN_TEXT,
  CHAR,
  END_LINE,
  END_TEXT,
  MATCH,
  NO_WORD_BOUNDARY,
  NOP,
  type Program,
  SPLIT,
  WORD_BOUNDARY,
} from "./program.ts";
import { MAX_RUNE } from "./syntax.ts";

const WORD: readonly number[] = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];

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
  /**
   * Dense transitions, `#trans[s * k + cls]`: the next state + 1, 0 while unknown, or
   * {@linkcode T_MATCH} / {@linkcode T_DEAD}. Two bytes each: there are never more than
   * {@linkcode MAX_STATES} states.
   */
  #trans: Int16Array = new Int16Array(0);
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

  // Copies of what `test` reads for every line, one property load each.
  readonly #minLength: number;
  readonly #prefix: string;
  readonly #bmp: Uint8Array;
  readonly #k: number;

  constructor(program: Program) {
    this.#p = program;
    this.#a = alphabet(program.sets);
    this.#minLength = program.minLength;
    this.#prefix = program.prefix;
    this.#bmp = this.#a.bmp;
    this.#k = this.#a.size;
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
    const n = line.length;
    // Go's fast paths: too short to match (UTF-16 units are never fewer than code
    // points), or the literal every match starts with is not there.
    if (n < this.#minLength) return false;
    let from = 0;
    let s: number;
    if (this.#prefix !== "") {
      from = line.indexOf(this.#prefix);
      if (from < 0) return false;
      s = from === 0 ? this.#startState() : this.#startAfter(line.charCodeAt(from - 1));
    } else {
      s = this.#initial >= 0 ? this.#initial : this.#startState();
    }
    return this.#dense ? this.#walkDense(line, s, from) : this.#walkSparse(line, s, from);
  }

  /**
   * The automaton's walk over `line` from state `s` at `from`: where matching spends its
   * time. The only code V8's Maglev compiles (`--maglev-filter=#walk*` in deno.json,
   * README "Footprint"), so the names must keep that prefix.
   */
  #walkDense(line: string, s: number, from: number): boolean {
    const n = line.length;
    const bmp = this.#bmp;
    const k = this.#k;
    let trans = this.#trans;
    // `row` is s * k: where state s's transitions start.
    let row = s * k;
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
          trans = this.#trans;
        }
        if (t < 0) return t === T_MATCH;
      }
      row = (t - 1) * k;
    }
    const end = this.#eot[row / k];
    return end === 0 ? this.#atEnd(row / k) : end === 1;
  }

  #walkSparse(line: string, s: number, from: number): boolean {
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
      if (this.#dense) this.#trans[s * this.#a.size + cls] = t;
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
    this.#trans = new Int16Array(0);
    this.#sparse = [];
    this.#eot = new Int8Array(0);
    this.#initial = -1;
  }
}

function isWordByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || c === 0x5f ||
    (c >= 0x61 && c <= 0x7a);
}

/**
 * `a` with room for at least `size` elements (half as many again, or more), the new ones
 * zero. Its buffer is moved into the bigger one (`a` is unusable afterwards), so the old
 * memory goes at once instead of waiting for a collection beside the new.
 */
function grow<T extends Int32Array | Int16Array | Uint8Array | Int8Array>(a: T, size: number): T {
  const length = Math.max(size, Math.ceil(a.length * 1.5));
  const buffer = (a.buffer as ArrayBuffer).transfer(length * a.BYTES_PER_ELEMENT);
  return new (a.constructor as new (buffer: ArrayBuffer) => T)(buffer);
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
