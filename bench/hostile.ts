/**
 * Hostile patterns: the pattern shapes that once stalled, slowed or crashed the agent,
 * and the worst shapes found since, each timed with our engine and with Go's `regexp`
 * (Debian's Go, `bench/go_hostile/`) on the same rule: compiling the pattern, the first
 * rule (ours builds its automaton states then), and every rule after that.
 *
 * Run alone: `deno run <the bench task's flags> bench/hostile.ts [--no-write]`; it rewrites
 * the "Hostile patterns" section of BENCHMARKS.md. `deno task bench` runs it after the
 * suite.
 *
 * @module
 */
import { z } from "zod";
import { compileGoRegexp, treeOf } from "../src/patterns/regexp.ts";
import { Matcher } from "../src/patterns/engine.ts";
import { compileProgram } from "../src/patterns/program.ts";
import { buildGoBaseline, goBuildEnv, goMatchOnly } from "./go_baseline.ts";
import { median, mustRun } from "./measure.ts";
import { MatchProbeSchema, probeArgv, ROOT } from "./ours.ts";
import { generateRuleset } from "./ruleset.ts";
import { parseIptablesSave } from "../src/iptables/save_parser.ts";

/** An ordinary kube-proxy rule line of 122 bytes. */
export const RULE_122 =
  '-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https" -m tcp -p tcp -d 10.0.0.1/32 -j KUBE-SEP-ABCD';

/** One hostile shape: a pattern and the rule it is timed on. */
export interface HostileCase {
  name: string;
  pattern: string;
  rule: string;
  ruleLabel: string;
}

const ASTRAL_LETTERS = "\u{1D400}".repeat(1000); // MATHEMATICAL BOLD CAPITAL A, a letter

/** The shapes: the issue's, and the worst found while building the engine. */
export function hostileCases(): HostileCase[] {
  const r122 = { rule: RULE_122, ruleLabel: "122-byte rule" };
  return [
    { name: "`\\b{400}`", pattern: "\\b{400}", ...r122 },
    { name: "`(|){1000}x`", pattern: "(|){1000}x", ...r122 },
    { name: "`(?:\\b|\\B){1000}x`", pattern: "(?:\\b|\\B){1000}x", ...r122 },
    {
      name: "`(?:ab|ab|...|x){1000}` (3.3 KB)",
      pattern: `(?:${"ab|".repeat(1100)}x){1000}`,
      ...r122,
    },
    { name: "`\\pL` x 5000", pattern: "\\pL".repeat(5000), ...r122 },
    { name: "`.{0,1000}z`", pattern: ".{0,1000}z", ...r122 },
    { name: "`(?:a|b|c|d|e){0,1000}z`", pattern: "(?:a|b|c|d|e){0,1000}z", ...r122 },
    {
      name: "`\\pL{1000}`",
      pattern: "\\pL{1000}",
      rule: ASTRAL_LETTERS,
      ruleLabel: "1000 astral letters",
    },
    {
      name: "`(?i)\\pL{1000}`",
      pattern: "(?i)\\pL{1000}",
      rule: ASTRAL_LETTERS,
      ruleLabel: "1000 astral letters",
    },
    {
      name: "`(x+x+)+y`",
      pattern: "(x+x+)+y",
      rule: "x".repeat(5000),
      ruleLabel: "5000 x",
    },
    {
      name: "`(?:a*)*b`",
      pattern: "(?:a*)*b",
      rule: "a".repeat(10000),
      ruleLabel: "10000 a",
    },
    {
      name: "`(?:.*x){100}y`",
      pattern: "(?:.*x){100}y",
      rule: "x".repeat(2000),
      ruleLabel: "2000 x",
    },
    {
      name: "`[\\x{0}-\\x{10FFFF}]{1000}$`",
      pattern: "[\\x{0}-\\x{10FFFF}]{1000}$",
      rule: "\u{1F600}".repeat(2000),
      ruleLabel: "2000 emoji",
    },
    {
      name: "1000 distinct words alternated",
      pattern: `(?:${Array.from({ length: 1000 }, (_, i) => `w${i}x${i * 7}`).join("|")})`,
      ...r122,
    },
    {
      name: "`(` x 990 `a` `)` x 990 (nesting)",
      pattern: `${"(".repeat(990)}a${")".repeat(990)}`,
      ...r122,
    },
    {
      name: "`a{1000}` x 3000 (3,000,000 instructions)",
      pattern: "a{1000}".repeat(3000),
      rule: "a".repeat(5000),
      ruleLabel: "5000 a",
    },
  ];
}

/** Timings of one case, in milliseconds. */
export interface HostileTiming {
  compileMs: number;
  firstRuleMs: number;
  ruleMs: number;
  matched: boolean;
  error: string | null;
}

export interface HostileRow {
  case: HostileCase;
  go: HostileTiming;
  ours: HostileTiming;
  agree: boolean;
}

const COMPILES = 5;

/**
 * The time of one run of `run`: batches of runs that take at least half a millisecond each,
 * 21 of them, the median batch divided by its runs (robust to the preemptions of a busy
 * machine; `bench/go_hostile` measures Go the same way).
 */
function perRule(run: () => void): number {
  let n = 1;
  for (;;) {
    const start = performance.now();
    for (let i = 0; i < n; i++) run();
    if (performance.now() - start >= 0.5 || n >= 1 << 20) break;
    n *= 2;
  }
  const batches: number[] = [];
  for (let b = 0; b < 21; b++) {
    const start = performance.now();
    for (let i = 0; i < n; i++) run();
    batches.push((performance.now() - start) / n);
  }
  return median(batches);
}

/**
 * Times one case with our engine: compiling (parse with Go's limits, the automaton) and
 * the first rule after it, each the median of {@linkcode COMPILES} fresh compiles; then
 * the rule again and again.
 */
function timeOurs(c: HostileCase): HostileTiming {
  const compiles: number[] = [];
  const firsts: number[] = [];
  let matcher: Matcher | undefined;
  let matched = false;
  for (let i = 0; i < COMPILES; i++) {
    let start = performance.now();
    const result = compileGoRegexp(c.pattern);
    if (!result.ok) {
      compiles.push(performance.now() - start);
      return {
        compileMs: median(compiles),
        firstRuleMs: NaN,
        ruleMs: NaN,
        matched: false,
        error: result.message,
      };
    }
    matcher = new Matcher(compileProgram([treeOf(result.regexp)!]));
    compiles.push(performance.now() - start);
    start = performance.now();
    matched = matcher.test(c.rule);
    firsts.push(performance.now() - start);
  }
  const ruleMs = perRule(() => matcher!.test(c.rule));
  return { compileMs: median(compiles), firstRuleMs: median(firsts), ruleMs, matched, error: null };
}

const GoOutput = z.object({
  results: z.array(z.object({
    error: z.string().nullable(),
    compileMs: z.array(z.number()),
    firstMatchMs: z.array(z.number()),
    ruleMs: z.number(),
    matched: z.boolean(),
  })),
});

async function timeGo(cases: readonly HostileCase[]): Promise<HostileTiming[]> {
  const dir = await Deno.makeTempDir({ prefix: "aim-go-hostile-" });
  try {
    const binary = `${dir}/go_hostile`;
    await mustRun(["go", "build", "-o", binary, "."], {
      cwd: `${ROOT}/bench/go_hostile`,
      env: goBuildEnv(),
    });
    const child = new Deno.Command(binary, { stdin: "piped", stdout: "piped" }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify({
      cases: cases.map((c) => ({
        pattern: c.pattern,
        rule: c.rule,
        compiles: COMPILES,
      })),
    })));
    await writer.close();
    const output = await child.output();
    if (!output.success) throw new Error("go_hostile failed");
    const { results } = GoOutput.parse(JSON.parse(new TextDecoder().decode(output.stdout)));
    return results.map((r) => ({
      compileMs: median(r.compileMs),
      firstRuleMs: r.error === null ? median(r.firstMatchMs) : NaN,
      ruleMs: r.error === null ? r.ruleMs : NaN,
      matched: r.matched,
      error: r.error,
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Times every case with Go and with ours. */
export async function runHostileBench(): Promise<HostileRow[]> {
  const cases = hostileCases();
  const go = await timeGo(cases);
  // One untimed pass: V8 compiles our engine's own code on its first uses (Go's is compiled
  // ahead of time); the common-case line below shows what a cold process costs.
  for (const c of cases) {
    const result = compileGoRegexp(c.pattern);
    if (result.ok) result.regexp.test(c.rule);
  }
  return cases.map((c, i) => {
    const ours = timeOurs(c);
    const agree = (go[i].error === null) === (ours.error === null) &&
      (go[i].error !== null || go[i].matched === ours.matched);
    return { case: c, go: go[i], ours, agree };
  });
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 1) return `${value.toFixed(1)} ms`;
  if (value >= 0.01) return `${value.toFixed(3)} ms`;
  return `${(value * 1000).toFixed(2)} µs`;
}

function ratio(ours: number, go: number): string {
  if (!Number.isFinite(ours) || !Number.isFinite(go) || go <= 0) return "n/a";
  const r = ours / go;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}x`;
}

export const SECTION_START = "<!-- hostile-patterns:start -->";
export const SECTION_END = "<!-- hostile-patterns:end -->";

/** The "Hostile patterns" section of BENCHMARKS.md. */
export function renderHostileSection(
  rows: readonly HostileRow[],
  common: CommonCase,
  machine: string,
): string {
  const lines = [
    SECTION_START,
    "## Hostile patterns",
    "",
    "One allowlist pattern of each shape, compiled and matched against one rule, by our engine",
    "and by Go's `regexp` (Debian's Go, the same rule bytes). Compile: median of 5 fresh compiles",
    "(ours: parse with Go's limits, build the automaton). First rule: the first match after each",
    "compile, median of 5 (ours builds the automaton states that rule needs then). Per rule: the",
    "same rule again, in batches of at least 0.5 ms, the median of 21 batches (ours walks cached",
    "states).",
    "Ours is timed after one untimed pass over all shapes (V8 compiles our engine's code on its",
    "first uses; the common-case line below shows a cold process).",
    "Ratios are ours / Go (below 1: faster than Go). Every pair must give Go's verdict. The",
    "machine is shared: the load average below says how busy it was.",
    "",
    "| shape | rule | compile Go / ours | first rule Go / ours | per rule Go / ours (ratio) | same verdict |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.case.name.replaceAll("|", "\\|")} | ${r.case.ruleLabel} | ${fmt(r.go.compileMs)} / ${
        fmt(r.ours.compileMs)
      } | ` +
      `${fmt(r.go.firstRuleMs)} / ${fmt(r.ours.firstRuleMs)} (${
        ratio(r.ours.firstRuleMs, r.go.firstRuleMs)
      }) | ${fmt(r.go.ruleMs)} / ${fmt(r.ours.ruleMs)} (${ratio(r.ours.ruleMs, r.go.ruleMs)}) | ` +
      `${r.agree ? "yes" : "**no**"} |`
    ),
    "",
    `The common case, in the same run: matching alone on the ${common.lines} lines of the generated`,
    `nft-5k ruleset with the shipped IPv4 allowlist: Go's MatchString loop ${
      fmt(common.goLoopMs)
    } (median of 9),`,
    `ours ${fmt(common.oursWarmMs)} warm (median of 8; ${
      (common.goLoopMs / common.oursWarmMs).toFixed(1)
    }x faster than Go), ${fmt(common.oursColdMs)} cold`,
    `(first run in the process, automaton states built as rules need them; ${
      (common.goLoopMs / common.oursColdMs).toFixed(1)
    }x). Same unexpected rules: ${common.agree ? "yes" : "**no**"}.`,
    "",
    `Machine: ${machine}. Command: \`deno run --quiet -A bench/hostile.ts\` (also run by`,
    "`deno task bench`).",
    SECTION_END,
  ];
  return lines.join("\n");
}

/** Replaces (or adds) the section in the file's text. */
export function spliceSection(text: string, section: string): string {
  const start = text.indexOf(SECTION_START);
  const end = text.indexOf(SECTION_END);
  if (start >= 0 && end > start) {
    return text.slice(0, start) + section + text.slice(end + SECTION_END.length);
  }
  const commands = text.indexOf("\n## Commands");
  if (commands >= 0) return `${text.slice(0, commands)}\n${section}\n${text.slice(commands)}`;
  return `${text.trimEnd()}\n\n${section}\n`;
}

async function machineLine(): Promise<string> {
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1] ??
    "unknown CPU";
  const go = (await mustRun(["go", "version"])).trim();
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  return `${cpu}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno} ` +
    `(V8 ${Deno.version.v8}), ${go}, load average ${load}`;
}

/** The common case next to the hostile ones: matching alone on the nft-5k ruleset. */
export interface CommonCase {
  lines: number;
  goLoopMs: number;
  oursColdMs: number;
  oursWarmMs: number;
  agree: boolean;
}

/**
 * Matching alone on the generated nft-5k ruleset (5000 services, the suite's seed) with the
 * shipped IPv4 allowlist: Go's MatchString loop (the original's algorithm) against our
 * `checkRules` without a verdict cache, first run in the process and the median of the rest.
 */
export async function commonCase(): Promise<CommonCase> {
  const dump = generateRuleset({ services: 5000, family: "ipv4", seed: 20240611 }).dump;
  const parsed = parseIptablesSave(dump);
  if (parsed.truncated) throw new Error("generated dump: truncated");
  const dir = await Deno.makeTempDir({ prefix: "aim-hostile-common-" });
  try {
    const rulesFile = `${dir}/rules.json`;
    const byTable = Object.fromEntries(
      parsed.tables.map((t) => [t.table, t.rules.map((r) => r.text)]),
    );
    await Deno.writeTextFile(rulesFile, JSON.stringify(byTable));
    const binary = await buildGoBaseline(dir);
    const go = await goMatchOnly(binary, "patterns/ipv4", rulesFile, 9);
    const probe = MatchProbeSchema.parse(JSON.parse(
      await mustRun(
        probeArgv("match", ["--input", "patterns/ipv4", "--rules", rulesFile, "--reps", "9"]),
        { cwd: ROOT },
      ),
    ));
    return {
      lines: probe.rules,
      goLoopMs: median(go.loopMs),
      oursColdMs: probe.matchMs[0],
      oursWarmMs: median(probe.matchMs.slice(1)),
      agree: go.unexpected.length === probe.unexpected.length,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the benchmark and rewrites the section of `file` (unless `write` is false). */
export async function hostileBench(file: string, write: boolean): Promise<HostileRow[]> {
  const rows = await runHostileBench();
  const common = await commonCase();
  const section = renderHostileSection(rows, common, await machineLine());
  if (write) {
    const text = await Deno.readTextFile(file).catch(() => "# Benchmarks\n");
    await Deno.writeTextFile(file, spliceSection(text, section));
    await mustRun([Deno.execPath(), "fmt", "--quiet", file], { cwd: ROOT });
  } else {
    console.log(section);
  }
  return rows;
}

if (import.meta.main) {
  const rows = await hostileBench(`${ROOT}/BENCHMARKS.md`, !Deno.args.includes("--no-write"));
  if (rows.some((r) => !r.agree)) {
    console.error("hostile patterns: a verdict differs from Go's");
    Deno.exit(1);
  }
}
