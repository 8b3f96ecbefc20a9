/**
 * Writes a parsed Go pattern as JavaScript regexp source that V8 runs with the same
 * verdict. Two facts shape it:
 *
 * - V8's linear-time engine (our guarantee against a hostile pattern) refuses the `u`
 *   and `i` flags and nested counted repetition beyond 16 copies. So the source works on
 *   UTF-16 code units with no flags: case folding and Unicode classes are already
 *   resolved to code-point sets by the parser, astral code points become surrogate
 *   pairs, and large counts are split into chunks of at most 16 copies.
 * - Rule lines are almost always ASCII. The `bmp` variant assumes the line holds no
 *   surrogates (the caller checks), which lets `.` and negated classes stay one plain
 *   class: the fast path.
 *
 * Greediness and captures do not change whether a pattern matches, so both are dropped.
 *
 * @module
 */

import type { CodeSet } from "./codeset.ts";
import type { Node } from "./syntax.ts";

/** Which lines the source must handle: all, or only lines without surrogate pairs. */
export type Variant = "full" | "bmp";

/** The most copies of one thing V8's linear engine accepts along a nesting path. */
const MAX_REPLICATION = 16;

interface Emitted {
  source: string;
  /** Product of repetition counts along the worst nesting path, as V8 counts it. */
  replication: number;
  /** Whether it can match the empty string (V8 counts repeats of such bodies higher). */
  nullable: boolean;
}

/** JavaScript regexp source (no flags) with the verdicts of the Go pattern `node`. */
export function emitSource(node: Node, variant: Variant): string {
  return emit(node, variant).source;
}

function emit(node: Node, variant: Variant): Emitted {
  switch (node.kind) {
    case "empty":
      return { source: "(?:)", replication: 1, nullable: true };
    case "set":
      return { source: emitSet(node.set, variant), replication: 1, nullable: false };
    case "assert":
      // Rule lines never hold `\n`, so Go's line anchors under (?m) equal text anchors.
      return {
        source: node.what === "beginText"
          ? "^"
          : node.what === "endText"
          ? "$"
          : node.what === "wordBoundary"
          ? "\\b"
          : "\\B",
        replication: 1,
        nullable: true,
      };
    case "group":
      return emit(node.sub, variant);
    case "concat": {
      const parts = node.subs.map((sub) => emit(sub, variant));
      return {
        source: parts.map((p) => p.source).join(""),
        replication: Math.max(1, ...parts.map((p) => p.replication)),
        nullable: parts.every((p) => p.nullable),
      };
    }
    case "alternate": {
      const parts = node.subs.map((sub) => emit(sub, variant));
      return {
        source: `(?:${parts.map((p) => p.source).join("|")})`,
        replication: Math.max(1, ...parts.map((p) => p.replication)),
        nullable: parts.some((p) => p.nullable),
      };
    }
    case "repeat":
      return emitRepeat(emit(node.sub, variant), node.min, node.max);
  }
}

/** `x{min,max}` (max -1: unbounded), split so no path exceeds {@linkcode MAX_REPLICATION}. */
function emitRepeat(body: Emitted, min: number, max: number): Emitted {
  const x = `(?:${body.source})`;
  const count = max < 0 ? Math.max(min, 1) : Math.max(max, 1);
  // V8 counts `x+` and `x{n,}` over a body that can match empty (or holds copies itself)
  // as more copies than `x{n}x*`, which means the same: keep the short forms for plain
  // bodies only.
  const unboundedHeavy = max < 0 && min > 0 && (body.replication > 1 || body.nullable);
  if (count * body.replication <= MAX_REPLICATION && !unboundedHeavy) {
    const op = max < 0
      ? (min === 0 ? "*" : min === 1 ? "+" : `{${min},}`)
      : min === max
      ? `{${min}}`
      : min === 0 && max === 1
      ? "?"
      : `{${min},${max}}`;
    return {
      source: x + op,
      replication: count * body.replication,
      nullable: min === 0 || body.nullable,
    };
  }
  // x{n,m} == x{k} ... x{k} x{n%k}  then  x{0,k} ... x{0,k} x{0,(m-n)%k}  (or x* when unbounded)
  const chunk = Math.max(1, Math.floor(MAX_REPLICATION / body.replication));
  const parts: string[] = [];
  let widest = 1;
  const times = (n: number, lowerBound: boolean) => {
    for (let left = n; left > 0; left -= chunk) {
      const k = Math.min(chunk, left);
      widest = Math.max(widest, k);
      parts.push(lowerBound ? `${x}{${k}}` : `${x}{0,${k}}`);
    }
  };
  times(min, true);
  if (max < 0) parts.push(`${x}*`);
  else times(max - min, false);
  return {
    source: parts.join(""),
    replication: widest * body.replication,
    nullable: min === 0 || body.nullable,
  };
}

function escapeUnit(unit: number): string {
  if (
    (unit >= 0x30 && unit <= 0x39) || (unit >= 0x41 && unit <= 0x5a) ||
    (unit >= 0x61 && unit <= 0x7a)
  ) {
    return String.fromCharCode(unit);
  }
  return `\\u${unit.toString(16).padStart(4, "0")}`;
}

function classOf(ranges: readonly number[]): string {
  if (ranges.length === 2 && ranges[0] === ranges[1]) return escapeUnit(ranges[0]);
  let out = "[";
  for (let i = 0; i < ranges.length; i += 2) {
    out += ranges[i] === ranges[i + 1]
      ? escapeUnit(ranges[i])
      : `${escapeUnit(ranges[i])}-${escapeUnit(ranges[i + 1])}`;
  }
  return out + "]";
}

/** The BMP part of `set` without the surrogate range (lines hold no lone surrogates). */
function bmpRanges(set: CodeSet): number[] {
  const out: number[] = [];
  for (let i = 0; i < set.length; i += 2) {
    const lo = set[i];
    const hi = Math.min(set[i + 1], 0xffff);
    if (lo > 0xffff) break;
    if (lo < 0xd800) out.push(lo, Math.min(hi, 0xd7ff));
    if (hi > 0xdfff) out.push(Math.max(lo, 0xe000), hi);
  }
  return out;
}

/** The astral part of `set` as alternatives of surrogate pairs. */
function astralAlternatives(set: CodeSet): string[] {
  const byHigh: { high: [number, number]; low: [number, number] }[] = [];
  const push = (h1: number, h2: number, l1: number, l2: number) =>
    byHigh.push({ high: [h1, h2], low: [l1, l2] });
  for (let i = 0; i < set.length; i += 2) {
    const lo = Math.max(set[i], 0x10000);
    const hi = set[i + 1];
    if (hi < lo) continue;
    const [hLo, lLo] = surrogates(lo);
    const [hHi, lHi] = surrogates(hi);
    if (hLo === hHi) {
      push(hLo, hLo, lLo, lHi);
      continue;
    }
    push(hLo, hLo, lLo, 0xdfff);
    if (hHi - hLo > 1) push(hLo + 1, hHi - 1, 0xdc00, 0xdfff);
    push(hHi, hHi, 0xdc00, lHi);
  }
  return byHigh.map(({ high, low }) => classOf(high) + classOf(low));
}

function surrogates(cp: number): [number, number] {
  const v = cp - 0x10000;
  return [0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff)];
}

function emitSet(set: CodeSet, variant: Variant): string {
  const bmp = bmpRanges(set);
  const alternatives = variant === "full" ? astralAlternatives(set) : [];
  if (bmp.length > 0) alternatives.unshift(classOf(bmp));
  if (alternatives.length === 0) return "[]";
  return alternatives.length === 1 ? alternatives[0] : `(?:${alternatives.join("|")})`;
}
