/**
 * Go `regexp` patterns, run by V8. A pattern is parsed with Go's rules
 * ({@linkcode parseGoRegexp}), written as flag-free JavaScript source
 * ({@linkcode emitSource}) and checked to be accepted by V8's linear-time engine. At
 * run time V8's fast backtracking engine matches, and falls back to the linear-time
 * engine when a line makes it backtrack too much (the V8 flags in deno.json), so no
 * pattern can make a check hang.
 *
 * @example
 * ```ts
 * const result = compileGoRegexp("^-A INPUT -i lo -j ACCEPT$");
 * if (result.ok) result.regexp.test("-A INPUT -i lo -j ACCEPT"); // true
 * ```
 *
 * @module
 */

import { emitSource, type Variant } from "./emit.ts";
import { GoSyntaxError, type Node, parseGoRegexp } from "./syntax.ts";
import type { CompileResult, GoRegexp } from "./types.ts";

const SURROGATE = /[\ud800-\udfff]/;

/** Whether V8 runs with the linear-time engine available (`--enable-experimental-regexp-engine`). */
export const linearEngineAvailable: boolean = (() => {
  try {
    new RegExp("a", "l");
    return true;
  } catch {
    return false;
  }
})();

/** Whether `line` holds a surrogate pair, i.e. a code point outside the BMP. */
export function hasAstral(line: string): boolean {
  return SURROGATE.test(line);
}

/**
 * Compiles source for V8's fast backtracking engine, now (a first run compiles it), after
 * proving the linear-time engine accepts it too: that is what V8 falls back to when a
 * line makes the fast engine backtrack too much. Throws when either refuses (e.g. a
 * pattern too large for the fast engine).
 */
export function compileNative(source: string): RegExp {
  if (linearEngineAvailable) new RegExp(source, "l");
  const regexp = new RegExp(source);
  regexp.test("");
  return regexp;
}

/**
 * Compiles source for V8's linear-time engine alone. Used for lines with astral code
 * points (rare): their source holds surrogate-pair alternatives, which the linear engine
 * compiles at once but the fast engine can take a minute to.
 */
export function compileLinearOnly(source: string): RegExp {
  return new RegExp(source, linearEngineAvailable ? "l" : "");
}

class CompiledGoRegexp implements GoRegexp {
  #fullSource: string | undefined;
  #full: RegExp | undefined;
  /** Whether the BMP variant is also right for astral lines (same source). */
  #sameForAstral: boolean | undefined;

  constructor(
    readonly source: string,
    readonly node: Node,
    readonly bmpSource: string,
    readonly bmp: RegExp,
  ) {}

  /** The source of the variant for lines with astral code points, emitted once. */
  get fullSource(): string {
    return this.#fullSource ??= emitSource(this.node, "full");
  }

  /** The variant for lines with astral code points, compiled on first need. */
  get full(): RegExp {
    if (this.#full === undefined) {
      this.#sameForAstral = this.fullSource === this.bmpSource;
      this.#full = this.#sameForAstral ? this.bmp : compileLinearOnly(this.fullSource);
    }
    return this.#full;
  }

  test(line: string): boolean {
    // Most patterns emit the same source for both variants: then no surrogate scan.
    if (this.#sameForAstral === true) return this.bmp.test(line);
    return hasAstral(line) ? this.full.test(line) : this.bmp.test(line);
  }
}

/** Parses and compiles one allowlist pattern with Go's meaning. */
export function compileGoRegexp(source: string): CompileResult {
  let node: Node;
  try {
    node = parseGoRegexp(source);
  } catch (error) {
    if (error instanceof GoSyntaxError) return { ok: false, message: error.message };
    throw error;
  }
  try {
    const bmpSource = emitSource(node, "bmp");
    let bmp: RegExp;
    try {
      bmp = compileNative(bmpSource);
    } catch {
      bmp = compileLinearOnly(bmpSource); // too large for the fast engine: still linear
    }
    const regexp = new CompiledGoRegexp(source, node, bmpSource, bmp);
    regexp.full; // compile now, so a pattern V8 cannot take is reported now, not mid-check
    return { ok: true, regexp };
  } catch (error) {
    return { ok: false, message: `pattern cannot be matched in linear time: ${String(error)}` };
  }
}

/** The JavaScript source of `node` for lines of the given kind (for combining patterns). */
export function sourceFor(regexp: GoRegexp, variant: Variant): string | undefined {
  if (!(regexp instanceof CompiledGoRegexp)) return undefined;
  return variant === "bmp" ? regexp.bmpSource : regexp.fullSource;
}
