/**
 * A parser for Go's `regexp` syntax (RE2 with Go's Perl flags), producing a small
 * tree. It accepts exactly what Go's `regexp.Compile` accepts and, for what Go
 * rejects, gives Go's own error text, so an allowlist means here what it means to the
 * Go original. Character classes are resolved to code-point sets while parsing,
 * with case folding and negation applied in Go's order.
 *
 * @module
 */

import { type CodeSet, foldClosure, foldOrbit, MAX_RUNE, negate, normalize } from "./codeset.ts";
import { unicodeClass } from "./unicode_class.ts";

/** A node of a parsed pattern. Greediness and capture are dropped: a verdict needs neither. */
export type Node =
  | { kind: "set"; set: CodeSet }
  | { kind: "concat"; subs: Node[] }
  | { kind: "alternate"; subs: Node[] }
  | { kind: "repeat"; sub: Node; min: number; max: number }
  | { kind: "group"; sub: Node }
  | { kind: "assert"; what: "beginText" | "endText" | "wordBoundary" | "noWordBoundary" }
  | { kind: "empty" };

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
  missingBracket: "missing closing ]",
  missingParen: "missing closing )",
  missingRepeatArgument: "missing argument to repetition operator",
  trailingBackslash: "trailing backslash at end of expression",
  unexpectedParen: "unexpected )",
  nestingDepth: "expression nests too deeply",
  large: "expression too large",
} as const;

/** Go's limit on counted repetition, alone and nested. */
const MAX_REPEAT = 1000;
/** Go's limit on the height of the parse tree. */
const MAX_HEIGHT = 1000;
/** Go's limit on the compiled program size, in instructions (128 MiB / 40 bytes). */
const MAX_SIZE = Math.floor((128 << 20) / 40);
/** Go's limit on the runes held by literals and classes (128 MiB / 4 bytes). */
const MAX_RUNES = (128 << 20) / 4;

interface Flags {
  foldCase: boolean;
  oneLine: boolean;
  dotNL: boolean;
}

const ASCII = (ranges: number[]): CodeSet => normalize(ranges);
const PERL_CLASSES: Record<string, CodeSet> = {
  d: ASCII([0x30, 0x39]),
  s: ASCII([0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x20]),
  w: ASCII([0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a]),
};
const POSIX_CLASSES: Record<string, CodeSet> = {
  alnum: ASCII([0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a]),
  alpha: ASCII([0x41, 0x5a, 0x61, 0x7a]),
  ascii: ASCII([0x00, 0x7f]),
  blank: ASCII([0x09, 0x09, 0x20, 0x20]),
  cntrl: ASCII([0x00, 0x1f, 0x7f, 0x7f]),
  digit: ASCII([0x30, 0x39]),
  graph: ASCII([0x21, 0x7e]),
  lower: ASCII([0x61, 0x7a]),
  print: ASCII([0x20, 0x7e]),
  punct: ASCII([0x21, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x7e]),
  space: ASCII([0x09, 0x0d, 0x20, 0x20]),
  upper: ASCII([0x41, 0x5a]),
  word: ASCII([0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a]),
  xdigit: ASCII([0x30, 0x39, 0x41, 0x46, 0x61, 0x66]),
};

const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
const isAlnum = (c: string) => /^[0-9A-Za-z]$/.test(c);
const unhex = (c: string | undefined): number =>
  c !== undefined && /^[0-9A-Fa-f]$/.test(c) ? parseInt(c, 16) : -1;

/** An entry of a concatenation being built: a node, plus where its last repeat began. */
type Item = { node: Node };

/**
 * Parses `source` as Go's `regexp.Compile` does.
 *
 * @throws {GoSyntaxError} with Go's message when Go would reject the pattern.
 */
export function parseGoRegexp(source: string): Node {
  return new Parser(source).parseAll();
}

class Parser {
  private pos = 0;
  private flags: Flags = { foldCase: false, oneLine: true, dotNL: false };
  /** Runes held by literals and classes, counted as Go counts them (two per range). */
  private runes = 0;

  constructor(private readonly src: string) {}

  parseAll(): Node {
    const node = this.parseAlternation(0);
    if (this.pos < this.src.length) {
      // Only a `)` stops the top level early.
      throw new GoSyntaxError(ERR.unexpectedParen, this.src);
    }
    if (this.runes > MAX_RUNES) throw new GoSyntaxError(ERR.large, this.src);
    checkLimits(node, this.src);
    return node;
  }

  /** Reads one code point at `pos` and advances. */
  private next(): string {
    const cp = this.src.codePointAt(this.pos);
    if (cp === undefined) return "";
    const ch = String.fromCodePoint(cp);
    this.pos += ch.length;
    return ch;
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  /** Parses alternatives until end of input or a `)` at this depth. */
  private parseAlternation(depth: number): Node {
    const alternatives: Node[] = [];
    for (;;) {
      alternatives.push(this.parseConcat(depth));
      if (this.peek() !== "|") break;
      this.pos++;
    }
    return alternatives.length === 1 ? alternatives[0] : { kind: "alternate", subs: alternatives };
  }

  private parseConcat(depth: number): Node {
    const items: Item[] = [];
    let lastRepeatStart = -1;
    while (this.pos < this.src.length) {
      const c = this.peek();
      if (c === "|" || c === ")") {
        if (c === ")" && depth === 0) throw new GoSyntaxError(ERR.unexpectedParen, this.src);
        break;
      }
      let repeatStart = -1;
      switch (c) {
        case "(":
          this.parseGroup(items, depth);
          break;
        case "^":
          this.pos++;
          items.push({ node: { kind: "assert", what: "beginText" } });
          break;
        case "$":
          this.pos++;
          items.push({ node: { kind: "assert", what: "endText" } });
          break;
        case ".":
          this.pos++;
          items.push({
            node: { kind: "set", set: this.flags.dotNL ? [0, MAX_RUNE] : negate([10, 10]) },
          });
          break;
        case "[":
          items.push({ node: { kind: "set", set: this.parseClass() } });
          break;
        case "*":
        case "+":
        case "?":
        case "{": {
          const start = this.pos;
          const bounds = this.parseRepeatOp();
          if (bounds === undefined) {
            // `{` that does not start a valid repeat is a literal.
            this.pos = start + 1;
            items.push({ node: this.literal(0x7b) });
            break;
          }
          if (this.peek() === "?") this.pos++;
          if (lastRepeatStart >= 0) {
            throw new GoSyntaxError(
              ERR.invalidRepeatOp,
              this.src.slice(lastRepeatStart, this.pos),
            );
          }
          const last = items[items.length - 1];
          if (last === undefined) {
            throw new GoSyntaxError(ERR.missingRepeatArgument, this.src.slice(start, this.pos));
          }
          const node: Node = { kind: "repeat", sub: last.node, min: bounds[0], max: bounds[1] };
          if ((bounds[0] >= 2 || bounds[1] >= 2) && !repeatIsValid(node, MAX_REPEAT)) {
            throw new GoSyntaxError(ERR.invalidRepeatSize, this.src.slice(start, this.pos));
          }
          last.node = node;
          repeatStart = start;
          break;
        }
        case "\\":
          this.parseBackslash(items);
          break;
        default:
          items.push({ node: this.literal(this.next().codePointAt(0)!) });
      }
      lastRepeatStart = repeatStart;
    }
    if (items.length === 0) return { kind: "empty" };
    if (items.length === 1) return items[0].node;
    return { kind: "concat", subs: items.map((i) => i.node) };
  }

  /** `(`, `(?:`, `(?flags)`, `(?flags:`, `(?P<name>` and `(?<name>`. */
  private parseGroup(items: Item[], depth: number): void {
    const start = this.pos;
    const saved = this.flags;
    if (this.peek(1) !== "?") {
      this.pos++;
      items.push({ node: this.parseGroupBody(depth, saved, true) });
      return;
    }
    const rest = this.src.slice(start);
    const named = rest.length > 4 && rest[2] === "P" && rest[3] === "<" ? 4 : rest.length > 3 &&
        rest[2] === "<"
      ? 3
      : 0;
    if (named > 0) {
      const end = rest.indexOf(">");
      if (end < 0) throw new GoSyntaxError(ERR.invalidNamedCapture, rest);
      const name = rest.slice(named, end);
      if (!/^[A-Za-z0-9_]+$/.test(name)) {
        throw new GoSyntaxError(ERR.invalidNamedCapture, rest.slice(0, end + 1));
      }
      this.pos = start + end + 1;
      items.push({ node: this.parseGroupBody(depth, saved, true) });
      return;
    }
    this.pos += 2;
    const flags = { ...this.flags };
    let negated = false;
    let sawFlag = false;
    while (this.pos < this.src.length) {
      const c = this.next();
      switch (c) {
        case "i":
          flags.foldCase = !negated;
          sawFlag = true;
          continue;
        case "m":
          flags.oneLine = negated;
          sawFlag = true;
          continue;
        case "s":
          flags.dotNL = !negated;
          sawFlag = true;
          continue;
        case "U":
          sawFlag = true;
          continue;
        case "-":
          if (negated) break;
          negated = true;
          sawFlag = false;
          continue;
        case ":":
        case ")":
          if (negated && !sawFlag) break;
          if (c === ")") {
            this.flags = flags;
            return;
          }
          this.flags = flags;
          items.push({ node: this.parseGroupBody(depth, saved, false) });
          return;
      }
      break;
    }
    throw new GoSyntaxError(ERR.invalidPerlOp, this.src.slice(start, this.pos));
  }

  private parseGroupBody(depth: number, saved: Flags, capture: boolean): Node {
    const body = this.parseAlternation(depth + 1);
    if (this.peek() !== ")") throw new GoSyntaxError(ERR.missingParen, this.src);
    this.pos++;
    this.flags = saved;
    return capture ? { kind: "group", sub: body } : body;
  }

  /** Parses `*`, `+`, `?` or `{n}`, `{n,}`, `{n,m}`; `undefined` when `{` is a literal. */
  private parseRepeatOp(): [number, number] | undefined {
    const c = this.src[this.pos];
    if (c !== "{") {
      this.pos++;
      return c === "*" ? [0, -1] : c === "+" ? [1, -1] : [0, 1];
    }
    const start = this.pos;
    this.pos++;
    const min = this.parseInt();
    if (min === undefined || this.pos >= this.src.length) return undefined;
    let max = min;
    if (this.src[this.pos] === ",") {
      this.pos++;
      if (this.pos >= this.src.length) return undefined;
      if (this.src[this.pos] === "}") {
        max = -1;
      } else {
        const m = this.parseInt();
        if (m === undefined) return undefined;
        max = m;
      }
    }
    if (this.src[this.pos] !== "}") return undefined;
    this.pos++;
    if (min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max)) {
      throw new GoSyntaxError(ERR.invalidRepeatSize, this.src.slice(start, this.pos));
    }
    return [min, max];
  }

  /** A decimal without leading zeros (capped: anything past Go's limits is just "too big"). */
  private parseInt(): number | undefined {
    const start = this.pos;
    if (!isDigit(this.src[start])) return undefined;
    if (this.src[start] === "0" && isDigit(this.src[start + 1])) return undefined;
    while (isDigit(this.src[this.pos])) this.pos++;
    return this.pos - start > 9 ? Number.MAX_SAFE_INTEGER : Number(this.src.slice(start, this.pos));
  }

  private parseBackslash(items: Item[]): void {
    const c = this.peek(1);
    switch (c) {
      case "A":
      case "z":
        this.pos += 2;
        items.push({ node: { kind: "assert", what: c === "A" ? "beginText" : "endText" } });
        return;
      case "b":
      case "B":
        this.pos += 2;
        items.push({
          node: { kind: "assert", what: c === "b" ? "wordBoundary" : "noWordBoundary" },
        });
        return;
      case "C":
        throw new GoSyntaxError(ERR.invalidEscape, "\\C");
      case "Q": {
        this.pos += 2;
        const end = this.src.indexOf("\\E", this.pos);
        const literal = this.src.slice(this.pos, end < 0 ? undefined : end);
        this.pos = end < 0 ? this.src.length : end + 2;
        for (const ch of literal) items.push({ node: this.literal(ch.codePointAt(0)!) });
        return;
      }
    }
    const set = this.parseUnicodeClass() ?? this.parsePerlClass();
    if (set !== undefined) {
      this.runes += set.length;
      items.push({ node: { kind: "set", set } });
      return;
    }
    items.push({ node: this.literal(this.parseEscape()) });
  }

  /** A literal code point, as a set of its case-folding orbit under `(?i)`. */
  private literal(cp: number): Node {
    this.runes += 1;
    if (this.flags.foldCase) {
      const orbit = foldOrbit(cp);
      return { kind: "set", set: normalize(orbit.flatMap((o) => [o, o])) };
    }
    return { kind: "set", set: [cp, cp] };
  }

  /** `\d \D \s \S \w \W` at `pos`, or `undefined`. */
  private parsePerlClass(): CodeSet | undefined {
    if (this.src[this.pos] !== "\\") return undefined;
    const c = this.src[this.pos + 1];
    const base = c === undefined ? undefined : PERL_CLASSES[c.toLowerCase()];
    if (base === undefined || !/[dswDSW]/.test(c!)) return undefined;
    this.pos += 2;
    return this.group(base, c === c!.toUpperCase());
  }

  /** A named group's set, folded under `(?i)` and then negated, as Go does. */
  private group(base: CodeSet, negated: boolean): CodeSet {
    const folded = this.flags.foldCase ? foldClosure(base) : base;
    return negated ? negate(folded) : folded;
  }

  /** `\pN`, `\p{Name}`, `\PN`, `\p{^Name}` at `pos`, or `undefined`. */
  private parseUnicodeClass(): CodeSet | undefined {
    const c = this.src[this.pos + 1];
    if (this.src[this.pos] !== "\\" || (c !== "p" && c !== "P")) return undefined;
    const start = this.pos;
    let negated = c === "P";
    this.pos += 2;
    const first = this.next();
    let name: string;
    let seq: string;
    if (first !== "{") {
      name = first;
      seq = this.src.slice(start, this.pos);
    } else {
      const end = this.src.indexOf("}", start);
      if (end < 0) throw new GoSyntaxError(ERR.invalidCharRange, this.src.slice(start));
      seq = this.src.slice(start, end + 1);
      name = this.src.slice(start + 3, end);
      this.pos = end + 1;
    }
    if (name.startsWith("^")) {
      negated = !negated;
      name = name.slice(1);
    }
    const set = unicodeClass(name);
    if (set === undefined) throw new GoSyntaxError(ERR.invalidCharRange, seq);
    return this.group(set, negated);
  }

  /** A bracketed class `[...]` at `pos`. */
  private parseClass(): CodeSet {
    const start = this.pos;
    this.pos++;
    let negated = false;
    if (this.peek() === "^") {
      negated = true;
      this.pos++;
    }
    const ranges: number[] = [];
    let first = true;
    while (this.pos >= this.src.length || this.src[this.pos] !== "]" || first) {
      first = false;
      if (this.src.startsWith("[:", this.pos) && this.pos + 2 < this.src.length) {
        const posix = this.parsePosixClass();
        if (posix !== undefined) {
          ranges.push(...posix);
          continue;
        }
      }
      const named = this.parseUnicodeClass() ?? this.parsePerlClass();
      if (named !== undefined) {
        ranges.push(...named);
        continue;
      }
      const rangeStart = this.pos;
      const lo = this.parseClassChar(start);
      let hi = lo;
      if (
        this.src[this.pos] === "-" && this.pos + 1 < this.src.length &&
        this.src[this.pos + 1] !== "]"
      ) {
        this.pos++;
        hi = this.parseClassChar(start);
        if (hi < lo) {
          throw new GoSyntaxError(ERR.invalidCharRange, this.src.slice(rangeStart, this.pos));
        }
      }
      if (this.flags.foldCase) {
        ranges.push(...foldClosure([lo, hi]));
      } else {
        ranges.push(lo, hi);
      }
    }
    this.pos++;
    const set = normalize(ranges);
    const result = negated ? negate(set) : set;
    this.runes += result.length;
    return result;
  }

  /** `[:name:]` or `[:^name:]` inside a class, or `undefined` when it is not one. */
  private parsePosixClass(): CodeSet | undefined {
    const end = this.src.indexOf(":]", this.pos + 2);
    if (end < 0) return undefined;
    const text = this.src.slice(this.pos, end + 2);
    const inner = text.slice(2, -2);
    const negated = inner.startsWith("^");
    const name = negated ? inner.slice(1) : inner;
    const base = Object.hasOwn(POSIX_CLASSES, name) ? POSIX_CLASSES[name] : undefined;
    if (base === undefined) {
      throw new GoSyntaxError(ERR.invalidCharRange, text);
    }
    this.pos = end + 2;
    return this.group(base, negated);
  }

  private parseClassChar(classStart: number): number {
    if (this.pos >= this.src.length) {
      throw new GoSyntaxError(ERR.missingBracket, this.src.slice(classStart));
    }
    if (this.src[this.pos] === "\\") return this.parseEscape();
    return this.next().codePointAt(0)!;
  }

  /** A single-character escape at `pos` (the backslash), as Go's parseEscape. */
  private parseEscape(): number {
    const start = this.pos;
    this.pos++;
    if (this.pos >= this.src.length) throw new GoSyntaxError(ERR.trailingBackslash, "");
    const c = this.next();
    const fail = (): never => {
      throw new GoSyntaxError(ERR.invalidEscape, this.src.slice(start, this.pos));
    };
    const cp = c.codePointAt(0)!;
    if (cp < 0x80 && !isAlnum(c)) return cp;
    switch (c) {
      case "1":
      case "2":
      case "3":
      case "4":
      case "5":
      case "6":
      case "7":
        if (!/[0-7]/.test(this.src[this.pos] ?? "")) return fail();
      // falls through
      case "0": {
        let r = cp - 0x30;
        for (let i = 1; i < 3 && /[0-7]/.test(this.src[this.pos] ?? ""); i++) {
          r = r * 8 + this.src.charCodeAt(this.pos) - 0x30;
          this.pos++;
        }
        return r;
      }
      case "x": {
        if (this.pos >= this.src.length) return fail();
        const d = this.next();
        if (d === "{") {
          let r = 0;
          let digits = 0;
          for (;;) {
            if (this.pos >= this.src.length) return fail();
            const h = this.next();
            if (h === "}") break;
            const v = unhex(h);
            if (v < 0) return fail();
            r = r * 16 + v;
            if (r > MAX_RUNE) return fail();
            digits++;
          }
          if (digits === 0) return fail();
          return r;
        }
        const x = unhex(d);
        const y = unhex(this.pos < this.src.length ? this.next() : undefined);
        if (x < 0 || y < 0) return fail();
        return x * 16 + y;
      }
      case "a":
        return 7;
      case "f":
        return 12;
      case "n":
        return 10;
      case "r":
        return 13;
      case "t":
        return 9;
      case "v":
        return 11;
    }
    return fail();
  }
}

/** Go's check that nested counted repetition stays within `n` copies of the innermost thing. */
function repeatIsValid(node: Node, n: number): boolean {
  if (node.kind === "repeat") {
    let m = node.max;
    if (m === 0) return true;
    if (m < 0) m = node.min;
    if (m > n) return false;
    if (m > 0) n = Math.floor(n / m);
  }
  return childrenOf(node).every((sub) => repeatIsValid(sub, n));
}

function childrenOf(node: Node): Node[] {
  switch (node.kind) {
    case "concat":
    case "alternate":
      return node.subs;
    case "repeat":
    case "group":
      return [node.sub];
    default:
      return [];
  }
}

/** Go's limits on the size of the compiled program and the height of the tree. */
function checkLimits(node: Node, src: string): void {
  if (height(node) > MAX_HEIGHT) throw new GoSyntaxError(ERR.nestingDepth, src);
  if (size(node) > MAX_SIZE) throw new GoSyntaxError(ERR.large, src);
}

function height(node: Node): number {
  let h = 1;
  for (const sub of childrenOf(node)) h = Math.max(h, 1 + height(sub));
  return h;
}

function size(node: Node): number {
  switch (node.kind) {
    case "group":
      return 2 + size(node.sub);
    case "concat":
      return node.subs.reduce((sum, sub) => sum + size(sub), 0) || 1;
    case "alternate":
      return node.subs.reduce((sum, sub) => sum + size(sub), 0) + node.subs.length - 1;
    case "repeat": {
      const sub = size(node.sub);
      if (node.max === -1) return node.min === 0 ? 2 + sub : 1 + node.min * sub;
      if (node.max === 1 && node.min === 0) return 1 + sub;
      return Math.max(1, node.max * sub + (node.max - node.min));
    }
    default:
      return 1;
  }
}
