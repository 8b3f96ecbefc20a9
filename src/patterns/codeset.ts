/**
 * Sets of Unicode code points as sorted, disjoint, non-adjacent inclusive ranges,
 * flattened: `[lo0, hi0, lo1, hi1, ...]`. Character classes of Go patterns are built
 * and folded here before they are written out as JavaScript regexp source.
 *
 * @module
 */

import { FOLD_ORBITS } from "./unicode_data.ts";

/** A normalized set of code points: `[lo0, hi0, lo1, hi1, ...]`. */
export type CodeSet = readonly number[];

/** The largest Unicode code point. */
export const MAX_RUNE = 0x10ffff;

/** Sorts and merges arbitrary ranges into a normalized {@linkcode CodeSet}. */
export function normalize(ranges: readonly number[]): CodeSet {
  const pairs: [number, number][] = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i], ranges[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const last = out.length - 1;
    if (last > 0 && lo <= out[last] + 1) {
      if (hi > out[last]) out[last] = hi;
    } else {
      out.push(lo, hi);
    }
  }
  return out;
}

/** Every code point not in `set`. */
export function negate(set: CodeSet): CodeSet {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < set.length; i += 2) {
    if (set[i] > next) out.push(next, set[i] - 1);
    next = set[i + 1] + 1;
  }
  if (next <= MAX_RUNE) out.push(next, MAX_RUNE);
  return out;
}

/** Whether `cp` is in `set` (binary search). */
export function contains(set: CodeSet, cp: number): boolean {
  let lo = 0;
  let hi = set.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < set[2 * mid]) hi = mid - 1;
    else if (cp > set[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

let orbits: number[][] | undefined;
let orbitOf: Map<number, number[]> | undefined;
/** Every code point that has a folding partner, sorted. */
let members: Int32Array | undefined;

function foldTables(): { orbits: number[][]; orbitOf: Map<number, number[]>; members: Int32Array } {
  if (!orbits || !orbitOf || !members) {
    orbits = FOLD_ORBITS.split(";").map((o) => o.split(",").map((h) => parseInt(h, 16)));
    orbitOf = new Map();
    for (const orbit of orbits) for (const cp of orbit) orbitOf.set(cp, orbit);
    members = Int32Array.from(orbitOf.keys()).sort();
  }
  return { orbits, orbitOf, members };
}

/**
 * The code points that Go's `(?i)` treats as equal to `cp` (its simple case-folding
 * orbit, ascending), including `cp` itself.
 */
export function foldOrbit(cp: number): readonly number[] {
  return foldTables().orbitOf.get(cp) ?? [cp];
}

/**
 * The ranges `[lo, hi]` and the orbit of every code point in it, appended to `out` as
 * ranges (unsorted): what Go's `appendFoldedRange` adds, found through the orbits instead
 * of code point by code point.
 */
export function pushFoldedRange(out: number[], lo: number, hi: number): number[] {
  const { orbitOf, members } = foldTables();
  out.push(lo, hi);
  let a = 0;
  let b = members.length;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (members[mid] < lo) a = mid + 1;
    else b = mid;
  }
  for (let i = a; i < members.length && members[i] <= hi; i++) {
    for (const cp of orbitOf.get(members[i])!) if (cp < lo || cp > hi) out.push(cp, cp);
  }
  return out;
}

/** `set` closed under case folding, as Go builds classes under `(?i)`. */
export function foldClosure(set: CodeSet): CodeSet {
  const out: number[] = [];
  for (let i = 0; i < set.length; i += 2) pushFoldedRange(out, set[i], set[i + 1]);
  return normalize(out);
}
