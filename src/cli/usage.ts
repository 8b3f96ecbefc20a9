/**
 * The usage text, byte for byte as Go's `FlagSet` prints it (`defaultUsage` and
 * `PrintDefaults`), so `-help` of this program looks like the Go binary's.
 */

import { type FlagSpec, goQuote } from "./go_flags.ts";

/**
 * `Usage of PROGRAM:` and one entry per flag, sorted by name: `  -name type`, then the
 * usage text on the next line after four spaces and a tab (on the same line after a
 * tab for a one-letter boolean), then ` (default ...)` unless the default is the zero
 * value. Ends with a newline.
 */
export function formatUsage(program: string, table: readonly FlagSpec[]): string {
  let out = program === "" ? "Usage:\n" : `Usage of ${program}:\n`;
  for (const spec of [...table].sort((a, b) => compareCodePoints(a.name, b.name))) {
    out += formatFlag(spec) + "\n";
  }
  return out;
}

function formatFlag(spec: FlagSpec): string {
  let line = `  -${spec.name}`;
  const { typeName, usage } = unquoteUsage(spec);
  if (typeName.length > 0) line += " " + typeName;
  line += utf8Length(line) <= 4 ? "\t" : "\n    \t";
  line += usage.replaceAll("\n", "\n    \t");
  const shown = shownDefault(spec);
  if (shown !== undefined) line += ` (default ${shown})`;
  return line;
}

/**
 * Go's `UnquoteUsage`: the first `backquoted` word names the value and loses its
 * quotes; otherwise the type name comes from the kind (none for booleans).
 */
export function unquoteUsage(spec: FlagSpec): { typeName: string; usage: string } {
  const open = spec.usage.indexOf("`");
  if (open >= 0) {
    const close = spec.usage.indexOf("`", open + 1);
    if (close >= 0) {
      const typeName = spec.usage.slice(open + 1, close);
      return {
        typeName,
        usage: spec.usage.slice(0, open) + typeName + spec.usage.slice(close + 1),
      };
    }
  }
  const typeName = spec.kind === "bool" ? "" : spec.kind;
  return { typeName, usage: spec.usage };
}

/** The default as Go shows it, or `undefined` for a zero value (which Go omits). */
function shownDefault(spec: FlagSpec): string | undefined {
  switch (spec.kind) {
    case "bool":
      return spec.default ? "true" : undefined;
    case "string":
      return spec.default === "" ? undefined : goQuote(spec.default);
    case "int":
    case "uint":
      return spec.default === 0n ? undefined : spec.default.toString();
  }
}

/** Byte order of the UTF-8 encodings, which is Go's string order. */
function compareCodePoints(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const diff = (left[i].codePointAt(0) ?? 0) - (right[i].codePointAt(0) ?? 0);
    if (diff !== 0) return diff;
  }
  return left.length - right.length;
}

const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}
