/**
 * Go `regexp` patterns, matched in linear time. A pattern is parsed with Go's rules into
 * Go's own tree ({@linkcode parseGoRunes}: Go's errors, Go's limits) and matched by the
 * automaton of engine.ts, so that no pattern Go accepts can stall a check, however it is
 * built, and no rule can make matching backtrack.
 *
 * @example
 * ```ts
 * const result = compileGoRegexp("^-A INPUT -i lo -j ACCEPT$");
 * if (result.ok) result.regexp.test("-A INPUT -i lo -j ACCEPT"); // true
 * ```
 *
 * @module
 */

import { Matcher } from "./engine.ts";
import { compileProgram, MAX_PROGRAM, programSize } from "./program.ts";
import { sequenceLength } from "./go_utf8.ts";
import {
  GoSyntaxError,
  INVALID_BYTE,
  parseGoRunes,
  type Regexp,
  runesText,
  stringRunes,
} from "./syntax.ts";
import type { CompileResult, GoRegexp } from "./types.ts";

class CompiledGoRegexp implements GoRegexp {
  #matcher: Matcher | undefined;

  constructor(readonly source: string, readonly tree: Regexp) {}

  test(line: string): boolean {
    this.#matcher ??= new Matcher(compileProgram([this.tree]));
    return this.#matcher.test(line);
  }
}

/** The parse tree of a compiled pattern (for joining the patterns of a table). */
export function treeOf(regexp: GoRegexp): Regexp | undefined {
  return regexp instanceof CompiledGoRegexp ? regexp.tree : undefined;
}

/**
 * The code points of a pattern line as Go's parser reads them: a byte that does not
 * start a valid UTF-8 sequence is {@linkcode INVALID_BYTE} + the byte.
 */
export function patternRunes(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i);
    if (n <= 0) {
      out.push(INVALID_BYTE + bytes[i]);
      i++;
      continue;
    }
    let cp = n === 1 ? bytes[i] : bytes[i] & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) cp = (cp << 6) | (bytes[i + k] & 0x3f);
    out.push(cp);
    i += n;
  }
  return out;
}

/** Parses and compiles one pattern given as code points (invalid bytes marked). */
export function compileGoRunes(runes: readonly number[]): CompileResult {
  const source = runesText(runes);
  let tree: Regexp;
  try {
    tree = parseGoRunes(runes);
  } catch (error) {
    if (error instanceof GoSyntaxError) return { ok: false, message: error.message };
    throw error;
  }
  const size = programSize(tree);
  if (size > MAX_PROGRAM) {
    return {
      ok: false,
      message: `pattern too large to match: it expands to ${size} automaton positions ` +
        `(at most ${MAX_PROGRAM}); Go accepts it but would need gigabytes to run it`,
    };
  }
  return { ok: true, regexp: new CompiledGoRegexp(source, tree) };
}

/** Parses and compiles one allowlist pattern with Go's meaning. */
export function compileGoRegexp(source: string): CompileResult {
  return compileGoRunes(stringRunes(source));
}

/** Parses and compiles one pattern line given as raw bytes (as Go reads a file). */
export function compileGoPatternBytes(bytes: Uint8Array): CompileResult {
  return compileGoRunes(patternRunes(bytes));
}
