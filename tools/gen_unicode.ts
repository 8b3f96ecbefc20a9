/**
 * Writes src/patterns/unicode_data.ts: the Unicode facts Go's `regexp` uses, taken from
 * the Unicode Character Database of the one Unicode version our reference Go release
 * ships (Go 1.26: `unicode.Version` is "15.0.0"). Nothing comes from V8's own tables.
 *
 * - the general categories: the leaves, and the unions Go defines (`L`, `LC`, `M`, `N`, `P`,
 *   `S`, `Z`; `Cn`, every unassigned code point; `C`, which since Go 1.25 includes `Cn`),
 * - the scripts (every value of Scripts.txt but `Unknown`, which Go has no table for),
 * - the simple case-folding orbits `(?i)` uses: code points that CaseFolding.txt maps (status
 *   C or S) to the same code point, with that code point (what `unicode.SimpleFold` cycles).
 *
 * The UCD comes from the npm registry (`@unicode/unicode-X.Y.Z`), installed outside the
 * repository; only the generated file is committed:
 *
 * ```
 * mkdir -p /tmp/ucd && (cd /tmp/ucd && npm install @unicode/unicode-15.0.0)
 * deno run --allow-read --allow-write tools/gen_unicode.ts \
 *   /tmp/ucd/node_modules/@unicode/unicode-15.0.0 src/patterns/unicode_data.ts
 * deno fmt src/patterns/unicode_data.ts
 * ```
 *
 * With `--json` instead of an output path it prints the tables as JSON, which
 * `tools/gen_unicode_check.go` compares with the tables of the Go on hand (run it with
 * the UCD version that Go ships, e.g. 13.0.0 for Go 1.19) to prove the derivation.
 *
 * @module
 */

/** Go's general category names, two letters, with the UCD's long names. */
const LEAF_CATEGORIES: Record<string, string> = {
  Lu: "Uppercase_Letter",
  Ll: "Lowercase_Letter",
  Lt: "Titlecase_Letter",
  Lm: "Modifier_Letter",
  Lo: "Other_Letter",
  Mn: "Nonspacing_Mark",
  Mc: "Spacing_Mark",
  Me: "Enclosing_Mark",
  Nd: "Decimal_Number",
  Nl: "Letter_Number",
  No: "Other_Number",
  Pc: "Connector_Punctuation",
  Pd: "Dash_Punctuation",
  Ps: "Open_Punctuation",
  Pe: "Close_Punctuation",
  Pi: "Initial_Punctuation",
  Pf: "Final_Punctuation",
  Po: "Other_Punctuation",
  Sm: "Math_Symbol",
  Sc: "Currency_Symbol",
  Sk: "Modifier_Symbol",
  So: "Other_Symbol",
  Zs: "Space_Separator",
  Zl: "Line_Separator",
  Zp: "Paragraph_Separator",
  Cc: "Control",
  Cf: "Format",
  Cs: "Surrogate",
  Co: "Private_Use",
};

/** Go's categories that are unions of others. */
const UNIONS: Record<string, readonly string[]> = {
  L: ["Lu", "Ll", "Lt", "Lm", "Lo"],
  LC: ["Lu", "Ll", "Lt"],
  M: ["Mn", "Mc", "Me"],
  N: ["Nd", "Nl", "No"],
  P: ["Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"],
  S: ["Sm", "Sc", "Sk", "So"],
  Z: ["Zs", "Zl", "Zp"],
  C: ["Cc", "Cf", "Cs", "Co", "Cn"],
};

/** Sorted, merged ranges of the union of sets. */
function union(sets: readonly number[][]): number[] {
  const pairs: [number, number][] = [];
  for (const set of sets) for (let i = 0; i < set.length; i += 2) pairs.push([set[i], set[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const w = out.length;
    if (w > 0 && lo <= out[w - 1] + 1) out[w - 1] = Math.max(out[w - 1], hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(set: readonly number[]): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < set.length; i += 2) {
    if (set[i] > next) out.push(next, set[i] - 1);
    next = set[i + 1] + 1;
  }
  if (next <= 0x10ffff) out.push(next, 0x10ffff);
  return out;
}

interface UnicodeRange {
  begin: number;
  end: number;
}

async function ranges(dir: string, path: string): Promise<number[]> {
  const module = await import(`file://${dir}/${path}/ranges.mjs`);
  const out: number[] = [];
  for (const r of module.default as UnicodeRange[]) {
    const lo = r.begin;
    const hi = r.end - 1;
    const last = out.length - 1;
    if (last > 0 && lo === out[last] + 1) out[last] = hi;
    else out.push(lo, hi);
  }
  return out;
}

async function foldMap(dir: string, status: string): Promise<Map<number, number>> {
  const module = await import(`file://${dir}/Case_Folding/${status}/code-points.mjs`);
  return module.default as Map<number, number>;
}

/** Ranges as base-36 deltas: lo0, hi0-lo0, lo1-hi0, hi1-lo1, ... */
function encode(set: readonly number[]): string {
  const out: string[] = [];
  let prev = 0;
  for (let i = 0; i < set.length; i += 2) {
    out.push((set[i] - prev).toString(36), (set[i + 1] - set[i]).toString(36));
    prev = set[i + 1];
  }
  return out.join(",");
}

interface Tables {
  version: string;
  categories: Record<string, number[]>;
  scripts: Record<string, number[]>;
  orbits: number[][];
}

async function readTables(dir: string): Promise<Tables> {
  const version = /unicode-(\d+\.\d+\.\d+)/.exec(dir)?.[1];
  if (version === undefined) throw new Error(`cannot tell the Unicode version of ${dir}`);
  const categories: Record<string, number[]> = {};
  for (const [short, long] of Object.entries(LEAF_CATEGORIES)) {
    categories[short] = await ranges(dir, `General_Category/${long}`);
  }
  const leaves = Object.keys(LEAF_CATEGORIES).map((k) => categories[k]);
  categories.Cn = complement(union(leaves));
  for (const [name, parts] of Object.entries(UNIONS)) {
    categories[name] = union(parts.map((part) => categories[part]));
  }
  const scripts: Record<string, number[]> = {};
  const names = [...Deno.readDirSync(`${dir}/Script`)].map((e) => e.name).sort();
  for (const name of names) {
    if (name === "Unknown") continue;
    scripts[name] = await ranges(dir, `Script/${name}`);
  }
  const byTarget = new Map<number, Set<number>>();
  for (const status of ["C", "S"]) {
    for (const [from, to] of await foldMap(dir, status)) {
      let orbit = byTarget.get(to);
      if (orbit === undefined) byTarget.set(to, orbit = new Set([to]));
      orbit.add(from);
    }
  }
  const orbits = [...byTarget.values()]
    .map((o) => [...o].sort((a, b) => a - b))
    .filter((o) => o.length > 1)
    .sort((a, b) => a[0] - b[0]);
  return { version, categories, scripts, orbits };
}

function render(t: Tables): string {
  const lines = [
    `// Generated by tools/gen_unicode.ts from the Unicode Character Database ${t.version}`,
    "// (npm @unicode/unicode-" + t.version + "), the Unicode version of Go 1.26. Do not edit.",
    "",
    "/** The Unicode version of every table here (Go 1.26's `unicode.Version`). */",
    `export const UNICODE_VERSION = "${t.version}";`,
    "",
    "/** Case-folding orbits (hex code points, `,` within an orbit, `;` between orbits). */",
    `export const FOLD_ORBITS = ${
      JSON.stringify(t.orbits.map((o) => o.map((c) => c.toString(16)).join(",")).join(";"))
    };`,
    "",
    "/**",
    " * Go's general categories as ranges, each written as base-36 deltas",
    " * (lo0, hi0-lo0, lo1-hi0, hi1-lo1, ...).",
    " */",
    "export const CATEGORIES: Readonly<Record<string, string>> = {",
    ...Object.entries(t.categories).map(([k, v]) => `  ${k}: ${JSON.stringify(encode(v))},`),
    "};",
    "",
    "/** The scripts as ranges, encoded as {@linkcode CATEGORIES}. */",
    "export const SCRIPTS: Readonly<Record<string, string>> = {",
    ...Object.entries(t.scripts).map(([k, v]) => `  ${k}: ${JSON.stringify(encode(v))},`),
    "};",
    "",
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const [dir, out] = Deno.args;
  if (dir === undefined || out === undefined) {
    console.error("usage: gen_unicode.ts UCD_DIR (OUT_FILE | --json)");
    Deno.exit(2);
  }
  const tables = await readTables(dir.replace(/\/$/, ""));
  if (out === "--json") console.log(JSON.stringify(tables));
  else Deno.writeTextFileSync(out, render(tables));
}
