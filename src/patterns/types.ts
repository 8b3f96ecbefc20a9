/** A compiled allowlist pattern with Go `regexp` meaning (RE2 syntax, unanchored). */
export interface GoRegexp {
  /** The pattern as written in the allowlist file. */
  readonly source: string;
  /** Whether the pattern matches anywhere in `line`; `line` must not contain `\n`. */
  test(line: string): boolean;
}

/** Compiling a pattern either succeeds or says why Go would reject it. */
export type CompileResult =
  | { ok: true; regexp: GoRegexp }
  | { ok: false; message: string };
