/**
 * Loading allowlist directories: one Go pattern a line, in files named after a table
 * or `global`. Read again at every check, so an updated ConfigMap applies without a
 * restart; compiled patterns are cached by their text, so an unchanged file costs a
 * read and no compilation.
 *
 * @module
 */

import { TABLES } from "../iptables/types.ts";
import { compileGoRegexp } from "./regexp.ts";
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

/** Splits a file into pattern lines as Go's line scanner does: `\n` ends a line, a trailing `\r` goes. */
export function patternLines(text: string): { line: number; pattern: string }[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const out: { line: number; pattern: string }[] = [];
  lines.forEach((raw, index) => {
    const pattern = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (pattern !== "") out.push({ line: index + 1, pattern });
  });
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads one allowlist file; a missing file means no patterns. */
async function readPatternFile(
  path: string,
  errors: AllowlistError[],
): Promise<PatternEntry[]> {
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(path);
    if (info.isDirectory) {
      errors.push({ kind: "allowlist", file: path, message: "is a directory, not a pattern file" });
      return [];
    }
    if (info.size > MAX_ALLOWLIST_FILE_BYTES) {
      errors.push({
        kind: "allowlist",
        file: path,
        message:
          `is ${(info.size / 1048576).toFixed(1)} MiB; allowlist files are limited to 1 MiB ` +
          "(the size limit of a ConfigMap), so this file was not used",
      });
      return [];
    }
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    errors.push({ kind: "allowlist", file: path, message: `cannot be read: ${describe(error)}` });
    return [];
  }
  let text: string;
  try {
    if (bytes.includes(0)) throw new Error("NUL byte");
    text = utf8.decode(bytes);
  } catch {
    errors.push({
      kind: "allowlist",
      file: path,
      message: "is not a text file (binary data or invalid UTF-8), so it was not used",
    });
    return [];
  }
  const entries: PatternEntry[] = [];
  for (const { line, pattern } of patternLines(text)) {
    const result = compileCached(pattern);
    if (result.ok) entries.push({ file: path, line, regexp: result.regexp });
    else errors.push({ kind: "pattern", file: path, line, message: result.message });
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
  for (const name of ALLOWLIST_FILES) {
    patterns.set(name, await readPatternFile(base + name, errors));
  }
  const version = ALLOWLIST_FILES.map((name) =>
    `${name}:${(patterns.get(name) ?? []).map((e) => e.regexp.source).join("\n")}`
  ).join("\u0000");
  return { dir, patterns, errors, readable: true, version };
}
