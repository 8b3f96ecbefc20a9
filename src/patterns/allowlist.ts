/**
 * Loading allowlist directories: one Go pattern a line, in files named after a table
 * or `global`. Read again at every check, so an updated ConfigMap applies without a
 * restart; compiled patterns are cached by their text, so an unchanged file costs a
 * read and no compilation.
 *
 * @module
 */

import { TABLES } from "../iptables/types.ts";
import { readBoundedFile } from "../bounded_file.ts";
import { compileGoPatternBytes, compileGoRegexp } from "./regexp.ts";
import type { CompileResult, GoRegexp } from "./types.ts";

/** The file of patterns for the nft view's lines (`add rule inet t c ...`). */
export const NFT_ALLOWLIST = "nftables";

/** The file names an allowlist directory may hold; anything else there is ignored. */
export const ALLOWLIST_FILES: readonly string[] = ["global", ...TABLES, NFT_ALLOWLIST];

/** A ConfigMap holds at most 1 MiB, so a larger allowlist file is a mistake. */
export const MAX_ALLOWLIST_FILE_BYTES = 1024 * 1024;

/** One compiled pattern and where it was written. */
export interface PatternEntry {
  file: string;
  line: number;
  regexp: GoRegexp;
}

/** A pattern Go would reject, or a file or directory that could not be read. */
export interface AllowlistError {
  kind: "pattern" | "allowlist";
  file: string;
  line?: number;
  message: string;
}

/** The patterns of one directory, by file name (`global`, `nat`, ...). */
export interface Allowlist {
  dir: string;
  patterns: ReadonlyMap<string, readonly PatternEntry[]>;
  errors: AllowlistError[];
  /** False when the directory itself could not be read: then no verdict can be trusted. */
  readable: boolean;
  /** Changes whenever any pattern text changes; keys verdict caches. */
  version: string;
}

const compiled = new Map<string, CompileResult>();

function compileCached(source: string): CompileResult {
  let result = compiled.get(source);
  if (result === undefined) {
    result = compileGoRegexp(source);
    compiled.set(source, result);
  }
  return result;
}

/**
 * Go's `bufio.Scanner` refuses a line this long or longer (its 64 KiB buffer must hold the
 * line and its `\n`): the scan stops there.
 */
export const MAX_LINE_BYTES = 64 * 1024 - 1;

/** One pattern line as Go's line scanner gives it: the raw bytes, and its line number. */
export interface RawPatternLine {
  line: number;
  bytes: Uint8Array;
}

/**
 * Splits a file into pattern lines as Go's `bufio.Scanner` (ScanLines) does: `\n` ends a
 * line, one trailing `\r` goes, the bytes stay as they are (a byte-order mark, a NUL or
 * invalid UTF-8 are the line's own business). Empty lines are skipped. `tooLong` is the
 * number of a line longer than {@linkcode MAX_LINE_BYTES}, where Go's scan stops.
 */
export function splitPatternLines(
  bytes: Uint8Array,
): { lines: RawPatternLine[]; tooLong?: number } {
  const lines: RawPatternLine[] = [];
  let start = 0;
  for (let number = 1; start < bytes.length; number++) {
    let end = bytes.indexOf(10, start);
    const last = end < 0;
    if (last) end = bytes.length;
    if (end - start > MAX_LINE_BYTES) return { lines, tooLong: number };
    let stop = end;
    if (stop > start && bytes[stop - 1] === 13) stop--;
    if (stop > start) lines.push({ line: number, bytes: bytes.subarray(start, stop) });
    start = end + 1;
  }
  return { lines };
}

/** {@linkcode splitPatternLines} for text (for tests and tools). */
export function patternLines(text: string): { line: number; pattern: string }[] {
  return splitPatternLines(new TextEncoder().encode(text)).lines.map(({ line, bytes }) => ({
    line,
    pattern: new TextDecoder().decode(bytes),
  }));
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Compiles one pattern line; a line that is not valid UTF-8 goes to Go's parser as bytes. */
function compileLine(bytes: Uint8Array): CompileResult {
  let text: string | undefined;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    text = undefined;
  }
  if (text !== undefined) return compileCached(text);
  const key = `\u0000bytes:${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  let result = compiled.get(key);
  if (result === undefined) {
    result = compileGoPatternBytes(bytes);
    compiled.set(key, result);
  }
  return result;
}

/**
 * Reads one allowlist file; a missing file means no patterns. Only a regular file (or a
 * symbolic link to one, as in a ConfigMap mount) is read, and at most 1 MiB of it.
 */
async function readPatternFile(
  path: string,
  errors: AllowlistError[],
): Promise<PatternEntry[]> {
  const read = await readBoundedFile(path, { maxBytes: MAX_ALLOWLIST_FILE_BYTES });
  switch (read.kind) {
    case "missing":
      return [];
    case "too-big":
      errors.push({
        kind: "allowlist",
        file: path,
        message: "is larger than 1 MiB; allowlist files are limited to 1 MiB " +
          "(the size limit of a ConfigMap), so this file was not used",
      });
      return [];
    case "refused":
      errors.push({ kind: "allowlist", file: path, message: read.reason });
      return [];
  }
  const bytes = read.bytes;
  const { lines, tooLong } = splitPatternLines(bytes);
  const entries: PatternEntry[] = [];
  for (const { line, bytes: lineBytes } of lines) {
    const result = compileLine(lineBytes);
    if (result.ok) entries.push({ file: path, line, regexp: result.regexp });
    else errors.push({ kind: "pattern", file: path, line, message: result.message });
  }
  if (tooLong !== undefined) {
    errors.push({
      kind: "pattern",
      file: path,
      line: tooLong,
      message: `is longer than ${MAX_LINE_BYTES} bytes, where Go's line scanner stops: ` +
        "it and the lines after it were not used",
    });
  }
  return entries;
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return error instanceof Error ? error.message : String(error);
}

/** Loads every allowlist file of `dir`. */
export async function loadAllowlist(dir: string): Promise<Allowlist> {
  const errors: AllowlistError[] = [];
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) {
      errors.push({ kind: "allowlist", file: dir, message: "is not a directory" });
    }
  } catch (error) {
    const message = error instanceof Deno.errors.NotFound
      ? "does not exist (point -input/-input6 at the directory holding the pattern files)"
      : `cannot be read: ${describe(error)}`;
    errors.push({ kind: "allowlist", file: dir, message });
  }
  if (errors.length > 0) {
    return { dir, patterns: new Map(), errors, readable: false, version: "" };
  }
  const patterns = new Map<string, PatternEntry[]>();
  const base = dir.endsWith("/") ? dir : `${dir}/`;
  const read = await Promise.all(ALLOWLIST_FILES.map(async (name) => {
    const fileErrors: AllowlistError[] = [];
    return { name, entries: await readPatternFile(base + name, fileErrors), fileErrors };
  }));
  for (const { name, entries, fileErrors } of read) {
    patterns.set(name, entries);
    errors.push(...fileErrors);
  }
  const version = ALLOWLIST_FILES.map((name) =>
    `${name}:${(patterns.get(name) ?? []).map((e) => e.regexp.source).join("\n")}`
  ).join("\u0000");
  return { dir, patterns, errors, readable: true, version };
}
