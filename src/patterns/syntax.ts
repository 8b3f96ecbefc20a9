/**
 * A parser for Go's `regexp` syntax (RE2 with Go's Perl flags) that builds the same tree
 * Go's `regexp/syntax` builds, in the same steps, so that it accepts exactly what Go
 * accepts and rejects the rest with Go's own message.
 *
 * The steps matter beyond the grammar: Go merges adjacent literals into strings, factors
 * common prefixes out of alternations, merges single characters into classes, and checks
 * its nesting limit (height 1000) and size limits (a compiled program of at most
 * 128 MiB / 40 bytes instructions, at most 32 Mi runes in classes) on that factored tree
 * while it is being built, with sizes cached per node as Go caches them. A pattern is
 * "too large" to Go, or not, only as measured there, so the parser keeps Go's order of
 * work, its node reuse and its caches.
 *
 * The input is a sequence of code points in which a byte that is not valid UTF-8 is
 * {@linkcode INVALID_BYTE} + the byte: Go reports "invalid UTF-8" only when its parser
 * reads such a byte as a character, so an earlier error wins.
 *
 * @module
 */

import { foldOrbit, pushFoldedRange } from "./codeset.ts";
import { unicodeClass } from "./unicode_class.ts";

/** Code points at or above this stand for an invalid byte: `INVALID_BYTE + byte`. */
export const INVALID_BYTE = 0x110000;
/** The largest Unicode code point. */
export const MAX_RUNE = 0x10ffff;

/** Go's `syntax.Op` values (the order matters: Go compares them). */
export const Op = {
  NoMatch: 1,
  EmptyMatch: 2,
  Literal: 3,
  CharClass: 4,
  AnyCharNotNL: 5,
  AnyChar: 6,
  BeginLine: 7,
  EndLine: 8,
  BeginText: 9,
  EndText: 10,
  WordBoundary: 11,
  NoWordBoundary: 12,
  Capture: 13,
  Star: 14,
  Plus: 15,
  Quest: 16,
  Repeat: 17,
  Concat: 18,
  Alternate: 19,
  LeftParen: 128,
  VerticalBar: 129,
} as const;
const OP_PSEUDO = 128;

/** Go's parse flags (only those Perl-mode parsing uses). */
export const Flag = {
  FoldCase: 1,
  ClassNL: 4,
  DotNL: 8,
  OneLine: 16,
  NonGreedy: 32,
  PerlX: 64,
  UnicodeGroups: 128,
  WasDollar: 256,
} as const;
const PERL = Flag.ClassNL | Flag.OneLine | Flag.PerlX | Flag.UnicodeGroups;

/** A node of the parse tree, as Go's `syntax.Regexp`. */
export interface Regexp {
  op: number;
  flags: number;
  /** Literal runes, or class ranges `[lo0, hi0, lo1, hi1, ...]`. */
  runes: number[];
  subs: Regexp[];
  min: number;
  max: number;
  /** Capture index (0: a `(?:` group marker on the parse stack). */
  cap: number;
  /** The next node of the parser's free list. */
  free: Regexp | null;
}

/** Go rejected the pattern; `message` is Go's `err.Error()` text. */
export class GoSyntaxError extends Error {
  constructor(code: string, expr: string) {
    super(`error parsing regexp: ${code}: \`${expr}\``);
  }
}

const ERR = {
  invalidCharRange: "invalid character class range",
  invalidEscape: "invalid escape sequence",
  invalidNamedCapture: "invalid named capture",
  invalidPerlOp: "invalid or unsupported Perl syntax",
  invalidRepeatOp: "invalid nested repetition operator",
  invalidRepeatSize: "invalid repeat count",
  invalidUTF8: "invalid UTF-8",
  missingBracket: "missing closing ]",
  missingParen: "missing closing )",
  missingRepeatArgument: "missing argument to repetition operator",
  trailingBackslash: "trailing backslash at end of expression",
  unexpectedParen: "unexpected )",
  nestingDepth: "expression nests too deeply",
  large: "expression too large",
} as const;

/** Go's `maxHeight`: the tallest parse tree. */
const MAX_HEIGHT = 1000;
/** Go's `maxSize`: 128 MiB of 40-byte instructions. */
const MAX_SIZE = Math.floor((128 << 20) / 40);
/** Go's `maxRunes`: 128 MiB of 4-byte runes. */
const MAX_RUNES = (128 << 20) / 4;
/** Go's `maxRepeat`: the largest count, alone and multiplied through nesting. */
const MAX_REPEAT = 1000;

/** Thrown inside the parser when a limit is hit; Go's message names the whole pattern. */
class LimitHit {
  constructor(readonly code: string) {}
}

const isDigit = (r: number | undefined) => r !== undefined && r >= 0x30 && r <= 0x39;
const isAlnum = (r: number) =>
  (r >= 0x30 && r <= 0x39) || (r >= 0x41 && r <= 0x5a) || (r >= 0x61 && r <= 0x7a);
const unhex = (r: number | undefined): number => {
  if (r === undefined) return -1;
  if (r >= 0x30 && r <= 0x39) return r - 0x30;
  if (r >= 0x61 && r <= 0x66) return r - 0x61 + 10;
  if (r >= 0x41 && r <= 0x46) return r - 0x41 + 10;
  return -1;
};

/**
 * Text of code points, an invalid byte shown as U+FFFD (as Go's JSON and logs show it).
 * Joined once, so a pattern's source is one flat string kept for the process's life, not
 * a chain of a pair per character.
 */
export function runesText(runes: readonly number[], from = 0, to = runes.length): string {
  const parts: string[] = [];
  for (let i = from; i < to; i++) {
    const r = runes[i];
    parts.push(r >= INVALID_BYTE ? "\ufffd" : String.fromCodePoint(r));
  }
  return parts.join("");
}

/** The code points of a (well-formed) string. */
export function stringRunes(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i)!;
    out.push(cp);
    if (cp > 0xffff) i++;
  }
  return out;
}

/** Go's `unicode.SimpleFold`: the next code point of `r`'s case-folding orbit. */
export function simpleFold(r: number): number {
  const orbit = foldOrbit(r);
  for (const o of orbit) if (o > r) return o;
  return orbit[0];
}

// --- Classes as Go builds them -------------------------------------------------------------

/** Sorts and merges ranges, as Go's `cleanClass`. */
export function cleanClass(r: number[]): number[] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < r.length; i += 2) pairs.push([r[i], r[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const w = out.length;
    if (w > 0 && lo <= out[w - 1] + 1) {
      if (hi > out[w - 1]) out[w - 1] = hi;
    } else {
      out.push(lo, hi);
    }
  }
  return out;
}

/** Appends a range, merging with either of the last two ranges, as Go's `appendRange`. */
function appendRange(r: number[], lo: number, hi: number): number[] {
  const n = r.length;
  for (let i = 2; i <= 4; i += 2) {
    if (n >= i) {
      const rlo = r[n - i];
      const rhi = r[n - i + 1];
      if (lo <= rhi + 1 && rlo <= hi + 1) {
        if (lo < rlo) r[n - i] = lo;
        if (hi > rhi) r[n - i + 1] = hi;
        return r;
      }
    }
  }
  r.push(lo, hi);
  return r;
}

function appendFoldedRange(r: number[], lo: number, hi: number): number[] {
  const folded = pushFoldedRange([], lo, hi);
  for (let i = 0; i < folded.length; i += 2) appendRange(r, folded[i], folded[i + 1]);
  return r;
}

function appendClass(r: number[], x: readonly number[]): number[] {
  for (let i = 0; i < x.length; i += 2) appendRange(r, x[i], x[i + 1]);
  return r;
}

function appendFoldedClass(r: number[], x: readonly number[]): number[] {
  for (let i = 0; i < x.length; i += 2) appendFoldedRange(r, x[i], x[i + 1]);
  return r;
}

function appendNegatedClass(r: number[], x: readonly number[]): number[] {
  let nextLo = 0;
  for (let i = 0; i < x.length; i += 2) {
    if (nextLo <= x[i] - 1) appendRange(r, nextLo, x[i] - 1);
    nextLo = x[i + 1] + 1;
  }
  if (nextLo <= MAX_RUNE) appendRange(r, nextLo, MAX_RUNE);
  return r;
}

function negateClass(r: readonly number[]): number[] {
  return appendNegatedClass([], r);
}

function appendLiteral(r: number[], x: number, flags: number): number[] {
  return flags & Flag.FoldCase ? appendFoldedRange(r, x, x) : appendRange(r, x, x);
}

/** Whether `re` matches the single rune `r` (Go's `matchRune`). */
function matchRune(re: Regexp, r: number): boolean {
  switch (re.op) {
    case Op.Literal:
      return re.runes.length === 1 && re.runes[0] === r;
    case Op.CharClass:
      for (let i = 0; i < re.runes.length; i += 2) {
        if (re.runes[i] <= r && r <= re.runes[i + 1]) return true;
      }
      return false;
    case Op.AnyCharNotNL:
      return r !== 10;
    case Op.AnyChar:
      return true;
  }
  return false;
}

function isCharClass(re: Regexp): boolean {
  return (re.op === Op.Literal && re.runes.length === 1) || re.op === Op.CharClass ||
    re.op === Op.AnyCharNotNL || re.op === Op.AnyChar;
}

/** Go's `mergeCharClass`: dst = dst|src, dst being the more complex. */
function mergeCharClass(dst: Regexp, src: Regexp): void {
  switch (dst.op) {
    case Op.AnyChar:
      break;
    case Op.AnyCharNotNL:
      if (matchRune(src, 10)) dst.op = Op.AnyChar;
      break;
    case Op.CharClass:
      dst.runes = [...dst.runes]; // class sets may be shared: never grow one in place
      if (src.op === Op.Literal) appendLiteral(dst.runes, src.runes[0], src.flags);
      else appendClass(dst.runes, src.runes);
      break;
    case Op.Literal: {
      if (src.runes[0] === dst.runes[0] && src.flags === dst.flags) break;
      dst.op = Op.CharClass;
      const first = dst.runes[0];
      dst.runes = appendLiteral([], first, dst.flags);
      appendLiteral(dst.runes, src.runes[0], src.flags);
      break;
    }
  }
}

/** Go's `cleanAlt`: a class that became everything (but `\n`) is `.` again. */
function cleanAlt(re: Regexp): void {
  if (re.op !== Op.CharClass) return;
  re.runes = cleanClass(re.runes);
  const r = re.runes;
  if (r.length === 2 && r[0] === 0 && r[1] === MAX_RUNE) {
    re.runes = [];
    re.op = Op.AnyChar;
  } else if (r.length === 4 && r[0] === 0 && r[1] === 9 && r[2] === 11 && r[3] === MAX_RUNE) {
    re.runes = [];
    re.op = Op.AnyCharNotNL;
  }
}

/** Go's `Regexp.Equal` (what `factor` uses to share a leading class). */
export function equal(x: Regexp | null, y: Regexp | null): boolean {
  if (x === null || y === null) return x === y;
  if (x.op !== y.op) return false;
  switch (x.op) {
    case Op.EndText:
      return (x.flags & Flag.WasDollar) === (y.flags & Flag.WasDollar);
    case Op.Literal:
    case Op.CharClass:
      // Runes only, not the fold flag: so Go factors `A|(?i:a)x` into `A(?:|x)`.
      return x.runes.length === y.runes.length && x.runes.every((r, i) => r === y.runes[i]);
    case Op.Alternate:
    case Op.Concat:
      return x.subs.length === y.subs.length && x.subs.every((s, i) => equal(s, y.subs[i]));
    case Op.Star:
    case Op.Plus:
    case Op.Quest:
      return (x.flags & Flag.NonGreedy) === (y.flags & Flag.NonGreedy) &&
        equal(x.subs[0], y.subs[0]);
    case Op.Repeat:
      return (x.flags & Flag.NonGreedy) === (y.flags & Flag.NonGreedy) && x.min === y.min &&
        x.max === y.max && equal(x.subs[0], y.subs[0]);
    case Op.Capture:
      return x.cap === y.cap && equal(x.subs[0], y.subs[0]);
  }
  return true;
}

// --- Named classes ---------------------------------------------------------------------------

interface Group {
  negated: boolean;
  ranges: readonly number[];
}

const PERL_GROUPS: Record<string, Group> = {
  "\\d": { negated: false, ranges: [0x30, 0x39] },
  "\\D": { negated: true, ranges: [0x30, 0x39] },
  "\\s": { negated: false, ranges: [0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x20] },
  "\\S": { negated: true, ranges: [0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x20] },
  "\\w": { negated: false, ranges: [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a] },
  "\\W": { negated: true, ranges: [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a] },
};

const POSIX_RANGES: Record<string, readonly number[]> = {
  alnum: [0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a],
  alpha: [0x41, 0x5a, 0x61, 0x7a],
  ascii: [0x00, 0x7f],
  blank: [0x09, 0x09, 0x20, 0x20],
  cntrl: [0x00, 0x1f, 0x7f, 0x7f],
  digit: [0x30, 0x39],
  graph: [0x21, 0x7e],
  lower: [0x61, 0x7a],
  print: [0x20, 0x7e],
  punct: [0x21, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x7e],
  space: [0x09, 0x0d, 0x20, 0x20],
  upper: [0x41, 0x5a],
  word: [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a],
  xdigit: [0x30, 0x39, 0x41, 0x46, 0x61, 0x66],
};

const POSIX_GROUPS: Record<string, Group> = Object.fromEntries(
  Object.entries(POSIX_RANGES).flatMap(([name, ranges]) => [
    [`[:${name}:]`, { negated: false, ranges }],
    [`[:^${name}:]`, { negated: true, ranges }],
  ]),
);

// --- The parser ------------------------------------------------------------------------------

/**
 * Parses `source` as Go's `regexp.Compile` does (Perl flags), given as code points with
 * invalid bytes marked ({@linkcode INVALID_BYTE}).
 *
 * @throws {GoSyntaxError} with Go's message when Go would reject the pattern.
 */
export function parseGoRunes(source: readonly number[]): Regexp {
  const parser = new Parser(source);
  try {
    return parser.parse();
  } catch (error) {
    if (error instanceof LimitHit) throw new GoSyntaxError(error.code, runesText(source));
    throw error;
  }
}

/** Parses a well-formed string as Go's `regexp.Compile` does. */
export function parseGoRegexp(source: string): Regexp {
  return parseGoRunes(stringRunes(source));
}

class Parser {
  private flags = PERL;
  private stack: Regexp[] = [];
  private freeList: Regexp | null = null;
  private numCap = 0;
  private numRegexp = 0;
  private numRunes = 0;
  private repeats = 0;
  private height: Map<Regexp, number> | null = null;
  private size: Map<Regexp, number> | null = null;
  private readonly n: number;

  constructor(private readonly src: readonly number[]) {
    this.n = src.length;
  }

  private fail(code: string, from: number, to: number): never {
    throw new GoSyntaxError(code, runesText(this.src, from, to));
  }

  /** Go's `nextRune`: the code point at `pos`, or "invalid UTF-8" naming the rest. */
  private rune(pos: number, end = this.n): number {
    const r = this.src[pos];
    if (r >= INVALID_BYTE) this.fail(ERR.invalidUTF8, pos, end);
    return r;
  }

  /** Go's `checkUTF8` on `[from, to)`. */
  private checkUTF8(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      if (this.src[i] >= INVALID_BYTE) this.fail(ERR.invalidUTF8, i, to);
    }
  }

  /** Equal classes share one array (a pattern may repeat a large class thousands of times). */
  private readonly classes = new Map<number, number[][]>();

  private intern(set: number[]): number[] {
    let h = 0x811c9dc5;
    for (const x of set) h = Math.imul(h ^ x, 16777619);
    const bucket = this.classes.get(h);
    if (bucket === undefined) {
      this.classes.set(h, [set]);
      return set;
    }
    for (const other of bucket) {
      if (other.length === set.length && other.every((x, i) => x === set[i])) return other;
    }
    bucket.push(set);
    return set;
  }

  private newRegexp(op: number): Regexp {
    let re = this.freeList;
    if (re !== null) {
      this.freeList = re.free;
      re.flags = 0;
      re.runes = [];
      re.subs = [];
      re.min = 0;
      re.max = 0;
      re.cap = 0;
      re.free = null;
    } else {
      re = { op, flags: 0, runes: [], subs: [], min: 0, max: 0, cap: 0, free: null };
      this.numRegexp++;
    }
    re.op = op;
    return re;
  }

  private reuse(re: Regexp): void {
    this.height?.delete(re);
    re.free = this.freeList;
    this.freeList = re;
  }

  // --- Limits, measured as Go measures them ---

  private checkLimits(re: Regexp): void {
    if (this.numRunes > MAX_RUNES) throw new LimitHit(ERR.large);
    this.checkSize(re);
    this.checkHeight(re);
  }

  private checkSize(re: Regexp): void {
    if (this.size === null) {
      // Cheap until (nodes made) x (product of repeat counts) could exceed the limit.
      if (this.repeats === 0) this.repeats = 1;
      if (re.op === Op.Repeat) {
        let n = re.max === -1 ? re.min : re.max;
        if (n <= 0) n = 1;
        if (n > Math.floor(MAX_SIZE / this.repeats)) this.repeats = MAX_SIZE;
        else this.repeats *= n;
      }
      if (this.numRegexp < Math.floor(MAX_SIZE / this.repeats)) return;
      this.size = new Map();
      for (const s of this.stack) this.checkSize(s);
    }
    if (this.calcSize(re, true) > MAX_SIZE) throw new LimitHit(ERR.large);
  }

  private calcSize(re: Regexp, force: boolean): number {
    const sizes = this.size!;
    if (!force) {
      const known = sizes.get(re);
      if (known !== undefined) return known;
    }
    let size = 0;
    switch (re.op) {
      case Op.Literal:
        size = re.runes.length;
        break;
      case Op.Capture:
      case Op.Star:
        size = 2 + this.calcSize(re.subs[0], false);
        break;
      case Op.Plus:
      case Op.Quest:
        size = 1 + this.calcSize(re.subs[0], false);
        break;
      case Op.Concat:
        for (const s of re.subs) size += this.calcSize(s, false);
        break;
      case Op.Alternate:
        for (const s of re.subs) size += this.calcSize(s, false);
        if (re.subs.length > 1) size += re.subs.length - 1;
        break;
      case Op.Repeat: {
        const sub = this.calcSize(re.subs[0], false);
        if (re.max === -1) {
          size = re.min === 0 ? 2 + sub : 1 + re.min * sub;
        } else {
          size = re.max * sub + (re.max - re.min);
        }
        break;
      }
    }
    size = Math.max(1, size);
    sizes.set(re, size);
    return size;
  }

  private checkHeight(re: Regexp): void {
    if (this.numRegexp < MAX_HEIGHT) return;
    if (this.height === null) {
      this.height = new Map();
      for (const s of this.stack) this.checkHeight(s);
    }
    if (this.calcHeight(re, true) > MAX_HEIGHT) throw new LimitHit(ERR.nestingDepth);
  }

  private calcHeight(re: Regexp, force: boolean): number {
    const heights = this.height!;
    if (!force) {
      const known = heights.get(re);
      if (known !== undefined) return known;
    }
    let h = 1;
    for (const s of re.subs) h = Math.max(h, 1 + this.calcHeight(s, false));
    heights.set(re, h);
    return h;
  }

  // --- The parse stack ---

  private push(re: Regexp): Regexp | null {
    this.numRunes += re.runes.length;
    const r = re.runes;
    if (re.op === Op.CharClass && r.length === 2 && r[0] === r[1]) {
      if (this.maybeConcat(r[0], this.flags & ~Flag.FoldCase)) return null;
      re.op = Op.Literal;
      re.runes = [r[0]];
      re.flags = this.flags & ~Flag.FoldCase;
    } else if (
      re.op === Op.CharClass && (
        (r.length === 4 && r[0] === r[1] && r[2] === r[3] && simpleFold(r[0]) === r[2] &&
          simpleFold(r[2]) === r[0]) ||
        (r.length === 2 && r[0] + 1 === r[1] && simpleFold(r[0]) === r[1] &&
          simpleFold(r[1]) === r[0])
      )
    ) {
      if (this.maybeConcat(r[0], this.flags | Flag.FoldCase)) return null;
      re.op = Op.Literal;
      re.runes = [r[0]];
      re.flags = this.flags | Flag.FoldCase;
    } else {
      this.maybeConcat(-1, 0);
    }
    this.stack.push(re);
    this.checkLimits(re);
    return re;
  }

  /** Go's `maybeConcat`: joins the top two literals; reports whether `r` was pushed. */
  private maybeConcat(r: number, flags: number): boolean {
    const n = this.stack.length;
    if (n < 2) return false;
    const re1 = this.stack[n - 1];
    const re2 = this.stack[n - 2];
    if (
      re1.op !== Op.Literal || re2.op !== Op.Literal ||
      (re1.flags & Flag.FoldCase) !== (re2.flags & Flag.FoldCase)
    ) {
      return false;
    }
    for (const x of re1.runes) re2.runes.push(x);
    if (r >= 0) {
      re1.runes = [r];
      re1.flags = flags;
      return true;
    }
    this.stack.pop();
    this.reuse(re1);
    return false;
  }

  private literal(r: number): void {
    const re = this.newRegexp(Op.Literal);
    re.flags = this.flags;
    if (this.flags & Flag.FoldCase) r = Math.min(...foldOrbit(r));
    re.runes = [r];
    this.push(re);
  }

  private op(op: number): Regexp {
    const re = this.newRegexp(op);
    re.flags = this.flags;
    return this.push(re)!;
  }

  /** Applies a repetition to the top of the stack; returns the position after it. */
  private repeat(
    op: number,
    min: number,
    max: number,
    before: number,
    after: number,
    lastRepeat: number,
  ): number {
    let flags = this.flags;
    if (after < this.n && this.src[after] === 0x3f) {
      after++;
      flags ^= Flag.NonGreedy;
    }
    if (lastRepeat >= 0) this.fail(ERR.invalidRepeatOp, lastRepeat, after);
    const n = this.stack.length;
    if (n === 0) this.fail(ERR.missingRepeatArgument, before, after);
    const sub = this.stack[n - 1];
    if (sub.op >= OP_PSEUDO) this.fail(ERR.missingRepeatArgument, before, after);
    const re = this.newRegexp(op);
    re.min = min;
    re.max = max;
    re.flags = flags;
    re.subs = [sub];
    this.stack[n - 1] = re;
    this.checkLimits(re);
    if (op === Op.Repeat && (min >= 2 || max >= 2) && !repeatIsValid(re, MAX_REPEAT)) {
      this.fail(ERR.invalidRepeatSize, before, after);
    }
    return after;
  }

  private concat(): Regexp | null {
    this.maybeConcat(-1, 0);
    let i = this.stack.length;
    while (i > 0 && this.stack[i - 1].op < OP_PSEUDO) i--;
    const subs = this.stack.slice(i);
    this.stack.length = i;
    if (subs.length === 0) return this.push(this.newRegexp(Op.EmptyMatch));
    return this.push(this.collapse(subs, Op.Concat));
  }

  private alternate(): Regexp | null {
    let i = this.stack.length;
    while (i > 0 && this.stack[i - 1].op < OP_PSEUDO) i--;
    const subs = this.stack.slice(i);
    this.stack.length = i;
    if (subs.length > 0) cleanAlt(subs[subs.length - 1]);
    if (subs.length === 0) return this.push(this.newRegexp(Op.NoMatch));
    return this.push(this.collapse(subs, Op.Alternate));
  }

  private collapse(subs: Regexp[], op: number): Regexp {
    if (subs.length === 1) return subs[0];
    let re = this.newRegexp(op);
    const out: Regexp[] = [];
    for (const sub of subs) {
      if (sub.op === op) {
        for (const s of sub.subs) out.push(s);
        this.reuse(sub);
      } else {
        out.push(sub);
      }
    }
    re.subs = out;
    if (op === Op.Alternate) {
      re.subs = this.factor(re.subs);
      if (re.subs.length === 1) {
        const old = re;
        re = re.subs[0];
        this.reuse(old);
      }
    }
    return re;
  }

  /** Go's `factor`: common prefixes out of an alternation, single characters into classes. */
  private factor(sub: Regexp[]): Regexp[] {
    if (sub.length < 2) return sub;

    // Round 1: common literal prefixes.
    let str: number[] = [];
    let strLen = 0;
    let strFlags = 0;
    let start = 0;
    let out: Regexp[] = [];
    for (let i = 0; i <= sub.length; i++) {
      let istr: number[] = [];
      let iflags = 0;
      if (i < sub.length) {
        [istr, iflags] = leadingString(sub[i]);
        if (iflags === strFlags) {
          let same = 0;
          while (same < strLen && same < istr.length && str[same] === istr[same]) same++;
          if (same > 0) {
            strLen = same;
            continue;
          }
        }
      }
      if (i === start) {
        // nothing
      } else if (i === start + 1) {
        out.push(sub[start]);
      } else {
        const prefix = this.newRegexp(Op.Literal);
        prefix.flags = strFlags;
        prefix.runes = str.slice(0, strLen);
        for (let j = start; j < i; j++) {
          sub[j] = this.removeLeadingString(sub[j], strLen);
          this.checkLimits(sub[j]);
        }
        const suffix = this.collapse(sub.slice(start, i), Op.Alternate);
        const re = this.newRegexp(Op.Concat);
        re.subs = [prefix, suffix];
        out.push(re);
      }
      start = i;
      str = istr;
      strLen = istr.length;
      strFlags = iflags;
    }
    sub = out;

    // Round 2: a common leading class (or fixed repeat of one).
    start = 0;
    out = [];
    let first: Regexp | null = null;
    for (let i = 0; i <= sub.length; i++) {
      let ifirst: Regexp | null = null;
      if (i < sub.length) {
        ifirst = leadingRegexp(sub[i]);
        if (
          first !== null && equal(first, ifirst) &&
          (isCharClass(first) ||
            (first.op === Op.Repeat && first.min === first.max && isCharClass(first.subs[0])))
        ) {
          continue;
        }
      }
      if (i === start) {
        // nothing
      } else if (i === start + 1) {
        out.push(sub[start]);
      } else {
        const prefix = first!;
        for (let j = start; j < i; j++) {
          sub[j] = this.removeLeadingRegexp(sub[j], j !== start);
          this.checkLimits(sub[j]);
        }
        const suffix = this.collapse(sub.slice(start, i), Op.Alternate);
        const re = this.newRegexp(Op.Concat);
        re.subs = [prefix, suffix];
        out.push(re);
      }
      start = i;
      first = ifirst;
    }
    sub = out;

    // Round 3: runs of single characters and classes become one class.
    start = 0;
    out = [];
    for (let i = 0; i <= sub.length; i++) {
      if (i < sub.length && isCharClass(sub[i])) continue;
      if (i === start) {
        // nothing
      } else if (i === start + 1) {
        out.push(sub[start]);
      } else {
        let max = start;
        for (let j = start + 1; j < i; j++) {
          if (
            sub[max].op < sub[j].op ||
            (sub[max].op === sub[j].op && sub[max].runes.length < sub[j].runes.length)
          ) {
            max = j;
          }
        }
        [sub[start], sub[max]] = [sub[max], sub[start]];
        for (let j = start + 1; j < i; j++) {
          mergeCharClass(sub[start], sub[j]);
          this.reuse(sub[j]);
        }
        cleanAlt(sub[start]);
        out.push(sub[start]);
      }
      if (i < sub.length) out.push(sub[i]);
      start = i + 1;
    }
    sub = out;

    // Round 4: runs of empty matches become one.
    out = [];
    for (let i = 0; i < sub.length; i++) {
      if (i + 1 < sub.length && sub[i].op === Op.EmptyMatch && sub[i + 1].op === Op.EmptyMatch) {
        continue;
      }
      out.push(sub[i]);
    }
    return out;
  }

  private removeLeadingString(re: Regexp, n: number): Regexp {
    if (re.op === Op.Concat && re.subs.length > 0) {
      const sub = this.removeLeadingString(re.subs[0], n);
      re.subs[0] = sub;
      if (sub.op === Op.EmptyMatch) {
        this.reuse(sub);
        switch (re.subs.length) {
          case 0:
          case 1:
            re.op = Op.EmptyMatch;
            re.subs = [];
            break;
          case 2: {
            const old = re;
            re = re.subs[1];
            this.reuse(old);
            break;
          }
          default:
            re.subs.shift();
        }
      }
      return re;
    }
    if (re.op === Op.Literal) {
      re.runes = re.runes.slice(n);
      if (re.runes.length === 0) re.op = Op.EmptyMatch;
    }
    return re;
  }

  private removeLeadingRegexp(re: Regexp, reuse: boolean): Regexp {
    if (re.op === Op.Concat && re.subs.length > 0) {
      if (reuse) this.reuse(re.subs[0]);
      re.subs.shift();
      if (re.subs.length === 0) {
        re.op = Op.EmptyMatch;
        re.subs = [];
      } else if (re.subs.length === 1) {
        const old = re;
        re = re.subs[0];
        this.reuse(old);
      }
      return re;
    }
    if (reuse) this.reuse(re);
    return this.newRegexp(Op.EmptyMatch);
  }

  private swapVerticalBar(): boolean {
    const n = this.stack.length;
    const s = this.stack;
    if (
      n >= 3 && s[n - 2].op === Op.VerticalBar && isCharClass(s[n - 1]) && isCharClass(s[n - 3])
    ) {
      let re1 = s[n - 1];
      let re3 = s[n - 3];
      if (re1.op > re3.op) {
        [re1, re3] = [re3, re1];
        s[n - 3] = re3;
      }
      mergeCharClass(re3, re1);
      this.reuse(re1);
      s.pop();
      return true;
    }
    if (n >= 2) {
      const re1 = s[n - 1];
      const re2 = s[n - 2];
      if (re2.op === Op.VerticalBar) {
        if (n >= 3) cleanAlt(s[n - 3]);
        s[n - 2] = re1;
        s[n - 1] = re2;
        return true;
      }
    }
    return false;
  }

  private parseVerticalBar(): void {
    this.concat();
    if (!this.swapVerticalBar()) this.op(Op.VerticalBar);
  }

  private parseRightParen(): void {
    this.concat();
    if (this.swapVerticalBar()) this.stack.pop();
    this.alternate();
    const n = this.stack.length;
    if (n < 2) this.fail(ERR.unexpectedParen, 0, this.n);
    const re1 = this.stack[n - 1];
    const re2 = this.stack[n - 2];
    this.stack.length = n - 2;
    if (re2.op !== Op.LeftParen) this.fail(ERR.unexpectedParen, 0, this.n);
    this.flags = re2.flags;
    if (re2.cap === 0) {
      this.push(re1);
    } else {
      re2.op = Op.Capture;
      re2.subs = [re1];
      this.push(re2);
    }
  }

  // --- The grammar ---

  parse(): Regexp {
    const src = this.src;
    const n = this.n;
    let pos = 0;
    let lastRepeat = -1;
    while (pos < n) {
      let repeat = -1;
      const ch = src[pos];
      switch (ch) {
        case 0x28: // (
          if (pos + 1 < n && src[pos + 1] === 0x3f) {
            pos = this.parsePerlFlags(pos);
            break;
          }
          this.numCap++;
          this.op(Op.LeftParen).cap = this.numCap;
          pos++;
          break;
        case 0x7c: // |
          this.parseVerticalBar();
          pos++;
          break;
        case 0x29: // )
          this.parseRightParen();
          pos++;
          break;
        case 0x5e: // ^
          this.op(this.flags & Flag.OneLine ? Op.BeginText : Op.BeginLine);
          pos++;
          break;
        case 0x24: // $
          if (this.flags & Flag.OneLine) this.op(Op.EndText).flags |= Flag.WasDollar;
          else this.op(Op.EndLine);
          pos++;
          break;
        case 0x2e: // .
          this.op(this.flags & Flag.DotNL ? Op.AnyChar : Op.AnyCharNotNL);
          pos++;
          break;
        case 0x5b: // [
          pos = this.parseClass(pos);
          break;
        case 0x2a: // *
        case 0x2b: // +
        case 0x3f: { // ?
          const op = ch === 0x2a ? Op.Star : ch === 0x2b ? Op.Plus : Op.Quest;
          const before = pos;
          pos = this.repeat(op, 0, 0, before, pos + 1, lastRepeat);
          repeat = before;
          break;
        }
        case 0x7b: { // {
          const before = pos;
          const parsed = this.parseRepeat(pos);
          if (parsed === undefined) {
            this.literal(0x7b);
            pos++;
            break;
          }
          const [min, max, after] = parsed;
          if (min < 0 || min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max)) {
            this.fail(ERR.invalidRepeatSize, before, after);
          }
          pos = this.repeat(Op.Repeat, min, max, before, after, lastRepeat);
          repeat = before;
          break;
        }
        case 0x5c: // backslash
          pos = this.parseBackslash(pos);
          break;
        default:
          this.literal(this.rune(pos));
          pos++;
      }
      lastRepeat = repeat;
    }
    this.concat();
    if (this.swapVerticalBar()) this.stack.pop();
    this.alternate();
    if (this.stack.length !== 1) this.fail(ERR.missingParen, 0, n);
    return this.stack[0];
  }

  private parseBackslash(pos: number): number {
    const src = this.src;
    const n = this.n;
    if (pos + 1 < n) {
      switch (src[pos + 1]) {
        case 0x41:
          this.op(Op.BeginText);
          return pos + 2;
        case 0x62:
          this.op(Op.WordBoundary);
          return pos + 2;
        case 0x42:
          this.op(Op.NoWordBoundary);
          return pos + 2;
        case 0x43:
          this.fail(ERR.invalidEscape, pos, pos + 2);
          break;
        case 0x51: {
          let end = pos + 2;
          while (end < n && !(src[end] === 0x5c && src[end + 1] === 0x45)) end++;
          for (let i = pos + 2; i < end; i++) this.literal(this.rune(i, end));
          return end < n ? end + 2 : n;
        }
        case 0x7a:
          this.op(Op.EndText);
          return pos + 2;
      }
    }
    const re = this.newRegexp(Op.CharClass);
    re.flags = this.flags;
    if (pos + 1 < n && (src[pos + 1] === 0x70 || src[pos + 1] === 0x50)) {
      const parsed = this.parseUnicodeClass(pos, null);
      if (parsed !== undefined) {
        re.runes = parsed[0];
        this.push(re);
        return parsed[1];
      }
    }
    const perl = this.parsePerlClassEscape(pos, []);
    if (perl !== undefined) {
      re.runes = this.intern(perl[0]);
      this.push(re);
      return perl[1];
    }
    this.reuse(re);
    const [r, after] = this.parseEscape(pos);
    this.literal(r);
    return after;
  }

  /** `{n}`, `{n,}`, `{n,m}` at `pos`: [min, max, after]; undefined when `{` is a literal. */
  private parseRepeat(pos: number): [number, number, number] | undefined {
    const src = this.src;
    let t = pos + 1;
    const first = this.parseInt(t);
    if (first === undefined) return undefined;
    let min = first[0];
    t = first[1];
    if (t >= this.n) return undefined;
    let max: number;
    if (src[t] !== 0x2c) {
      max = min;
    } else {
      t++;
      if (t >= this.n) return undefined;
      if (src[t] === 0x7d) {
        max = -1;
      } else {
        const second = this.parseInt(t);
        if (second === undefined) return undefined;
        max = second[0];
        t = second[1];
        if (max < 0) min = -1;
      }
    }
    if (t >= this.n || src[t] !== 0x7d) return undefined;
    return [min, max, t + 1];
  }

  /** A decimal without leading zeros: [value (-1 when 1e8 or more), after]. */
  private parseInt(pos: number): [number, number] | undefined {
    const src = this.src;
    if (!isDigit(src[pos])) return undefined;
    if (src[pos] === 0x30 && isDigit(src[pos + 1])) return undefined;
    let t = pos;
    while (isDigit(src[t])) t++;
    let value = 0;
    for (let i = pos; i < t; i++) {
      if (value >= 1e8) {
        value = -1;
        break;
      }
      value = value * 10 + src[i] - 0x30;
    }
    return [value, t];
  }

  /** `(?flags)`, `(?flags:`, `(?P<name>`, `(?<name>` at `pos`; returns the position after. */
  private parsePerlFlags(pos: number): number {
    const src = this.src;
    const n = this.n;
    const rest = n - pos;
    const startsWithP = rest > 4 && src[pos + 2] === 0x50 && src[pos + 3] === 0x3c;
    const startsWithName = rest > 3 && src[pos + 2] === 0x3c;
    if (startsWithP || startsWithName) {
      const nameStart = pos + (startsWithName ? 3 : 4);
      let end = pos;
      while (end < n && src[end] !== 0x3e) end++;
      if (end >= n) {
        this.checkUTF8(pos, n);
        this.fail(ERR.invalidNamedCapture, pos, n);
      }
      this.checkUTF8(nameStart, end);
      let valid = end > nameStart;
      for (let i = nameStart; i < end; i++) {
        if (src[i] !== 0x5f && !isAlnum(src[i])) valid = false;
      }
      if (!valid) this.fail(ERR.invalidNamedCapture, pos, end + 1);
      this.numCap++;
      this.op(Op.LeftParen).cap = this.numCap;
      return end + 1;
    }
    let t = pos + 2;
    let flags = this.flags;
    let sign = 1;
    let sawFlag = false;
    loop: while (t < n) {
      const r = this.rune(t);
      t++;
      switch (r) {
        case 0x69:
          flags |= Flag.FoldCase;
          sawFlag = true;
          break;
        case 0x6d:
          flags &= ~Flag.OneLine;
          sawFlag = true;
          break;
        case 0x73:
          flags |= Flag.DotNL;
          sawFlag = true;
          break;
        case 0x55:
          flags |= Flag.NonGreedy;
          sawFlag = true;
          break;
        case 0x2d:
          if (sign < 0) break loop;
          sign = -1;
          flags = ~flags;
          sawFlag = false;
          break;
        case 0x3a:
        case 0x29:
          if (sign < 0) {
            if (!sawFlag) break loop;
            flags = ~flags;
          }
          if (r === 0x3a) this.op(Op.LeftParen);
          this.flags = flags;
          return t;
        default:
          break loop;
      }
    }
    return this.fail(ERR.invalidPerlOp, pos, t);
  }

  /** A single-character escape at `pos` (the backslash): [rune, after]. */
  private parseEscape(pos: number): [number, number] {
    const src = this.src;
    const n = this.n;
    let t = pos + 1;
    if (t >= n) throw new GoSyntaxError(ERR.trailingBackslash, "");
    const ch = this.rune(t);
    t++;
    const invalid = (): never => this.fail(ERR.invalidEscape, pos, t);
    if (ch < 0x80 && !isAlnum(ch)) return [ch, t];
    switch (ch) {
      case 0x31:
      case 0x32:
      case 0x33:
      case 0x34:
      case 0x35:
      case 0x36:
      case 0x37:
        if (t >= n || src[t] < 0x30 || src[t] > 0x37) return invalid();
      // falls through
      case 0x30: {
        let r = ch - 0x30;
        for (let i = 1; i < 3; i++) {
          if (t >= n || src[t] < 0x30 || src[t] > 0x37) break;
          r = r * 8 + src[t] - 0x30;
          t++;
        }
        return [r, t];
      }
      case 0x78: {
        if (t >= n) return invalid();
        let d = this.rune(t);
        t++;
        if (d === 0x7b) {
          let nhex = 0;
          let r = 0;
          for (;;) {
            if (t >= n) return invalid();
            d = this.rune(t);
            t++;
            if (d === 0x7d) break;
            const v = unhex(d);
            if (v < 0) return invalid();
            r = r * 16 + v;
            if (r > MAX_RUNE) return invalid();
            nhex++;
          }
          if (nhex === 0) return invalid();
          return [r, t];
        }
        const x = unhex(d);
        let y = -1;
        if (t < n) {
          y = unhex(this.rune(t));
          t++;
        }
        if (x < 0 || y < 0) return invalid();
        return [x * 16 + y, t];
      }
      case 0x61:
        return [7, t];
      case 0x66:
        return [12, t];
      case 0x6e:
        return [10, t];
      case 0x72:
        return [13, t];
      case 0x74:
        return [9, t];
      case 0x76:
        return [11, t];
    }
    return invalid();
  }

  private parseClassChar(pos: number, classStart: number): [number, number] {
    if (pos >= this.n) this.fail(ERR.missingBracket, classStart, this.n);
    if (this.src[pos] === 0x5c) return this.parseEscape(pos);
    return [this.rune(pos), pos + 1];
  }

  private appendGroup(r: number[], g: Group): number[] {
    if (!(this.flags & Flag.FoldCase)) {
      return g.negated ? appendNegatedClass(r, g.ranges) : appendClass(r, g.ranges);
    }
    const tmp = cleanClass(appendFoldedClass([], g.ranges));
    return g.negated ? appendNegatedClass(r, tmp) : appendClass(r, tmp);
  }

  private parsePerlClassEscape(pos: number, r: number[]): [number[], number] | undefined {
    if (this.n - pos < 2 || this.src[pos] !== 0x5c) return undefined;
    const key = runesText(this.src, pos, pos + 2);
    const g = Object.hasOwn(PERL_GROUPS, key) ? PERL_GROUPS[key] : undefined;
    if (g === undefined) return undefined;
    return [this.appendGroup(r, g), pos + 2];
  }

  private parseNamedClass(pos: number, r: number[]): [number[], number] | undefined {
    const src = this.src;
    if (this.n - pos < 2 || src[pos] !== 0x5b || src[pos + 1] !== 0x3a) return undefined;
    let i = pos + 2;
    while (i + 1 < this.n && !(src[i] === 0x3a && src[i + 1] === 0x5d)) i++;
    if (i + 1 >= this.n) return undefined;
    const name = runesText(src, pos, i + 2);
    const g = Object.hasOwn(POSIX_GROUPS, name) ? POSIX_GROUPS[name] : undefined;
    if (g === undefined) this.fail(ERR.invalidCharRange, pos, i + 2);
    return [this.appendGroup(r, g), i + 2];
  }

  /** `r`: the class being built, or null for a class alone (its set is then shared). */
  private parseUnicodeClass(pos: number, r: number[] | null): [number[], number] | undefined {
    const src = this.src;
    const n = this.n;
    if (n - pos < 2 || src[pos] !== 0x5c || (src[pos + 1] !== 0x70 && src[pos + 1] !== 0x50)) {
      return undefined;
    }
    let sign = src[pos + 1] === 0x50 ? -1 : 1;
    let t = pos + 2;
    let seqEnd: number;
    let nameFrom: number;
    let nameTo: number;
    if (t >= n) {
      // `\p` at the very end: an empty name.
      seqEnd = n;
      nameFrom = nameTo = n;
    } else {
      const first = this.rune(t);
      t++;
      if (first !== 0x7b) {
        seqEnd = t;
        nameFrom = pos + 2;
        nameTo = t;
      } else {
        let end = pos;
        while (end < n && src[end] !== 0x7d) end++;
        if (end >= n) {
          this.checkUTF8(pos, n);
          this.fail(ERR.invalidCharRange, pos, n);
        }
        seqEnd = end + 1;
        nameFrom = pos + 3;
        nameTo = end;
        this.checkUTF8(nameFrom, nameTo);
        t = end + 1;
      }
    }
    if (nameTo > nameFrom && src[nameFrom] === 0x5e) {
      sign = -sign;
      nameFrom++;
    }
    const table = unicodeClass(runesText(src, nameFrom, nameTo));
    if (table === undefined) this.fail(ERR.invalidCharRange, pos, seqEnd);
    if (table.negated) sign = -sign;
    const fold = (this.flags & Flag.FoldCase) !== 0;
    if (r === null) return [table.shared(fold, sign < 0), t];
    const set = fold ? table.folded() : table.set;
    return [sign > 0 ? appendClass(r, set) : appendNegatedClass(r, set), t];
  }

  private parseClass(pos: number): number {
    const src = this.src;
    const n = this.n;
    let t = pos + 1;
    const re = this.newRegexp(Op.CharClass);
    re.flags = this.flags;
    let sign = 1;
    if (t < n && src[t] === 0x5e) {
      sign = -1;
      t++;
    }
    let cls: number[] = [];
    let first = true;
    while (t >= n || src[t] !== 0x5d || first) {
      first = false;
      if (n - t > 2 && src[t] === 0x5b && src[t + 1] === 0x3a) {
        const named = this.parseNamedClass(t, cls);
        if (named !== undefined) {
          [cls, t] = named;
          continue;
        }
      }
      const unicode = this.parseUnicodeClass(t, cls);
      if (unicode !== undefined) {
        [cls, t] = unicode;
        continue;
      }
      const perl = this.parsePerlClassEscape(t, cls);
      if (perl !== undefined) {
        [cls, t] = perl;
        continue;
      }
      const rangeStart = t;
      let lo: number;
      [lo, t] = this.parseClassChar(t, pos);
      let hi = lo;
      if (n - t >= 2 && src[t] === 0x2d && src[t + 1] !== 0x5d) {
        t++;
        [hi, t] = this.parseClassChar(t, pos);
        if (hi < lo) this.fail(ERR.invalidCharRange, rangeStart, t);
      }
      if (this.flags & Flag.FoldCase) appendFoldedRange(cls, lo, hi);
      else appendRange(cls, lo, hi);
    }
    t++;
    cls = cleanClass(cls);
    if (sign < 0) cls = negateClass(cls);
    re.runes = this.intern(cls);
    this.push(re);
    return t;
  }
}

/** Go's check that nested counted repetition stays within `n` copies of the innermost thing. */
function repeatIsValid(re: Regexp, n: number): boolean {
  if (re.op === Op.Repeat) {
    let m = re.max;
    if (m === 0) return true;
    if (m < 0) m = re.min;
    if (m > n) return false;
    if (m > 0) n = Math.floor(n / m);
  }
  return re.subs.every((sub) => repeatIsValid(sub, n));
}

function leadingString(re: Regexp): [number[], number] {
  if (re.op === Op.Concat && re.subs.length > 0) re = re.subs[0];
  if (re.op !== Op.Literal) return [[], 0];
  return [re.runes, re.flags & Flag.FoldCase];
}

function leadingRegexp(re: Regexp): Regexp | null {
  if (re.op === Op.EmptyMatch) return null;
  if (re.op === Op.Concat && re.subs.length > 0) {
    const sub = re.subs[0];
    return sub.op === Op.EmptyMatch ? null : sub;
  }
  return re;
}
