/**
 * src/cli/go_flags.ts and src/cli/usage.ts against Go's own `flag` package: the Go
 * program tests/go/flagcheck.go parses the same vectors with the same tables, and every
 * outcome (values, flags set, remaining arguments, error text, printed usage) must be
 * identical. Random vectors use a seeded PRNG; set FLAGS_SEED to replay a failure.
 */

import assert from "node:assert/strict";
import {
  type FlagSpec,
  flagTableProblems,
  goQuote,
  parseFlags,
  parseGoBool,
  parseGoInt,
  parseGoUint,
} from "../src/cli/go_flags.ts";
import { formatUsage } from "../src/cli/usage.ts";
import { FLAGS, PROGRAM_NAME } from "../src/cli/config.ts";
import { requires } from "./_support/requires.ts";
import { prng } from "./_support/prng.ts";

interface Suite {
  program: string;
  table: readonly FlagSpec[];
  vectors: string[][];
}

/** What flagcheck.go prints for one vector. */
interface Outcome {
  kind: "ok" | "help" | "error";
  message: string;
  values: Record<string, string>;
  set: string[];
  rest: string[];
  output: string;
}

const FLAGCHECK = new URL("./go/flagcheck.go", import.meta.url).pathname;

/** Runs every suite through Go's flag package in one process. */
async function runGo(suites: readonly Suite[]): Promise<Outcome[][]> {
  const input = suites.map((s) => ({
    program: s.program,
    flags: s.table.map((f) => ({
      name: f.name,
      kind: f.kind,
      default: String(f.default),
      usage: f.usage,
    })),
    vectors: s.vectors,
  }));
  const scratch = await Deno.makeTempDir({ prefix: "aim-flagcheck-" });
  try {
    const child = new Deno.Command("go", {
      args: ["run", FLAGCHECK],
      cwd: scratch,
      env: {
        GOCACHE: Deno.env.get("GOCACHE") ?? `${scratch}/cache`,
        GOPATH: `${scratch}/gopath`,
        HOME: scratch,
        GOFLAGS: "",
        GOWORK: "off",
        GOPROXY: "off",
        GO111MODULE: "on",
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(300_000),
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(input)));
    await writer.close();
    const output = await child.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `flagcheck.go failed:\n${stderr}`);
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

/** The same outcome computed by our parser, in flagcheck.go's shape. */
function ours(suite: Suite, args: readonly string[]): Outcome {
  const result = parseFlags(suite.table, args);
  const usage = formatUsage(suite.program, suite.table);
  const empty = { message: "", values: {}, set: [], rest: [] };
  switch (result.kind) {
    case "help":
      return { ...empty, kind: "help", output: usage };
    case "error":
      return {
        ...empty,
        kind: "error",
        message: result.message,
        output: `${result.message}\n${usage}`,
      };
    case "ok": {
      const values: Record<string, string> = {};
      for (const [name, value] of Object.entries(result.values)) values[name] = String(value);
      return {
        ...empty,
        kind: "ok",
        values,
        set: [...result.set],
        rest: [...result.rest],
        output: "",
      };
    }
  }
}

/** Go prints maps and Visit results sorted; compare without depending on order. */
function normalise(outcome: Outcome): Outcome {
  const values = Object.fromEntries(
    Object.entries(outcome.values).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
  );
  return { ...outcome, values, set: [...outcome.set].sort() };
}

/** A short account of how two outcomes differ, or `undefined` when they are the same. */
function describeDifference(go: Outcome, ts: Outcome): string | undefined {
  const parts: string[] = [];
  const names = new Set([...Object.keys(go.values), ...Object.keys(ts.values)]);
  for (const name of names) {
    if (go.values[name] !== ts.values[name]) {
      parts.push(
        `-${name}: go ${JSON.stringify(go.values[name])}, ts ${JSON.stringify(ts.values[name])}`,
      );
    }
  }
  for (const key of ["kind", "message", "set", "rest"] as const) {
    const [left, right] = [JSON.stringify(go[key]), JSON.stringify(ts[key])];
    if (left !== right) parts.push(`${key}: go ${left}, ts ${right}`);
  }
  if (go.output !== ts.output) {
    let at = 0;
    while (go.output[at] === ts.output[at]) at++;
    const around = (text: string) => JSON.stringify(text.slice(Math.max(0, at - 30), at + 30));
    parts.push(`output differs at ${at}: go ${around(go.output)}, ts ${around(ts.output)}`);
  }
  return parts.length === 0 ? undefined : parts.join("; ");
}

/** Compares every vector; on a mismatch, fails with the first few and the seed. */
async function assertSameAsGo(suites: readonly Suite[], seed?: number): Promise<void> {
  const expected = await runGo(suites);
  const mismatches: string[] = [];
  let compared = 0;
  suites.forEach((suite, s) => {
    suite.vectors.forEach((args, v) => {
      compared++;
      const go = normalise(expected[s][v]);
      const ts = normalise(ours(suite, args));
      const difference = describeDifference(go, ts);
      if (difference !== undefined) {
        mismatches.push(
          `args ${JSON.stringify(args)} (program ${JSON.stringify(suite.program)}): ${difference}`,
        );
      }
    });
  });
  assert.ok(compared > 0);
  const replay = seed === undefined ? "" : ` (seed ${seed}: rerun with FLAGS_SEED=${seed})`;
  assert.equal(
    mismatches.length,
    0,
    `${mismatches.length} of ${compared} vectors differ from Go${replay}:\n` +
      mismatches.slice(0, 8).join("\n"),
  );
}

// A table built to reach every corner of the usage format and of help handling.
const ODD_TABLE: readonly FlagSpec[] = [
  { name: "x", kind: "bool", default: false, usage: "one-letter bool: usage on the same line" },
  { name: "y", kind: "bool", default: true, usage: "one-letter bool, default true" },
  { name: "n", kind: "int", default: 0n, usage: "one-letter int" },
  { name: "u", kind: "uint", default: 7n, usage: "a `count` of things" },
  { name: "h", kind: "bool", default: false, usage: "a defined -h is an ordinary flag" },
  { name: "help", kind: "string", default: "", usage: "a defined -help needs a value" },
  { name: "s", kind: "string", default: 'q"b\\é\u00a0\t\n😀\u00ad', usage: "quoted default" },
  { name: "multi", kind: "string", default: "x", usage: "first line\nsecond line\n" },
  { name: "flag", kind: "bool", default: true, usage: "a `name` on a bool" },
  { name: "single", kind: "int", default: -3n, usage: "only one ` backquote" },
  { name: "empty", kind: "string", default: "", usage: "``" },
  { name: "big", kind: "int", default: 9223372036854775807n, usage: "" },
  { name: "ñ", kind: "bool", default: false, usage: "a one-letter name of two bytes" },
  { name: "B", kind: "uint", default: 0n, usage: "upper case sorts first" },
  { name: "_z", kind: "string", default: "", usage: "underscore sorts between cases" },
  { name: "a.b-c", kind: "string", default: "d", usage: "punctuation in a name" },
];

const EMPTY_TABLE: readonly FlagSpec[] = [];

const TRICKY_FOR_CONFIG: string[][] = [
  [],
  ["-once"],
  ["--once"],
  ["-once=false"],
  ["-once=0"],
  ["-once=1"],
  ["-once=t"],
  ["-once=T"],
  ["-once=TRUE"],
  ["-once=True"],
  ["-once=f"],
  ["-once=F"],
  ["-once=FALSE"],
  ["-once=False"],
  ["-once=yes"],
  ["-once=tRUE"],
  ["-once="],
  ["-once", "false"],
  ["-once=true=false"],
  ["-input", "/x"],
  ["-input=/x"],
  ["--input=/x"],
  ["-input="],
  ["-input"],
  ["-input", "-once"],
  ["-input", "--"],
  ["-input", ""],
  ["-input=a=b"],
  ["-interval=0x10"],
  ["-interval=0X10"],
  ["-interval=0o17"],
  ["-interval=0O17"],
  ["-interval=017"],
  ["-interval=08"],
  ["-interval=0b101"],
  ["-interval=0B101"],
  ["-interval=0b102"],
  ["-interval=1_000"],
  ["-interval=0x_1F"],
  ["-interval=0_7"],
  ["-interval=1__0"],
  ["-interval=0x1_"],
  ["-interval=_1"],
  ["-interval=0_"],
  ["-interval=-0_7"],
  ["-interval=+0x_f"],
  ["-interval=+5"],
  ["-interval=-5"],
  ["-interval=--5"],
  ["-interval=+-5"],
  ["-interval=+"],
  ["-interval=-"],
  ["-interval= 5"],
  ["-interval=5 "],
  ["-interval=abc"],
  ["-interval=9223372036854775807"],
  ["-interval=9223372036854775808"],
  ["-interval=-9223372036854775808"],
  ["-interval=-9223372036854775809"],
  ["-interval=99999999999999999999"],
  ["-interval=99999999999999999999x"],
  ["-interval=x99999999999999999999"],
  ["-interval=9999999999999999999_9"],
  ["-interval=1_8446744073709551616"],
  ["-interval=0x8000000000000000"],
  ["-interval=-0x8000000000000000"],
  ["-interval=0xffffffffffffffff"],
  ["-interval=0x10000000000000000"],
  ["-interval=0x"],
  ["-interval=0X"],
  ["-interval=0b"],
  ["-interval=0o"],
  ["-interval=0"],
  ["-interval=00"],
  ["-interval=-0"],
  ["-interval=1e3"],
  ["-interval=٣"],
  ["-interval=１"],
  ["-interval="],
  ["-interval"],
  ["-interval", "-5"],
  ["-log_file_max_size=-1"],
  ["-log_file_max_size=+1"],
  ["-log_file_max_size=18446744073709551615"],
  ["-log_file_max_size=18446744073709551616"],
  ["-log_file_max_size=0x_ffff_ffff_ffff_ffff"],
  ["-log_file_max_size=0o2000000000000000000000"],
  ["-log_file_max_size=0o1777777777777777777777"],
  ["-log_file_max_size=0b" + "1".repeat(64)],
  ["-log_file_max_size=0b1" + "0".repeat(64)],
  ["-v", "3"],
  ["-v=3"],
  ["--v", "010"],
  ["-v"],
  ["-foo"],
  ["--foo=1"],
  ["-h"],
  ["-help"],
  ["--help"],
  ["--h"],
  ["-h=false"],
  ["-help=nonsense"],
  ["-help", "-foo"],
  ["-foo", "-h"],
  ["-once", "-h", "-foo"],
  ["---x"],
  ["---"],
  ["-=x"],
  ["--=x"],
  ["-="],
  ["-"],
  ["--"],
  ["--", "-once"],
  ["-", "-once"],
  ["x", "-once"],
  ["-once", "x", "-ipv6"],
  ["-once", "--", "--", "-x"],
  ["", "-once"],
  ["-once", ""],
  ["-events=x"],
  ["-ipv6=é"],
  ['-input6=é\t\n"\\'],
  ["-interval=é\u00a0\u2028😀\x00\x7f\x1b[0m\u0301\ufeff\u00ad"],
  ["-output", "json", "-output", "text"],
  ["-interval=5", "-interval=6"],
  ["-interval=5", "-interval=x"],
  ["-Once"],
  ["-ONCE"],
  ["- once"],
  ["-once "],
  ["-version"],
  ["-watch", "-metricsAddress", ":9090"],
  ["-é"],
  ["--é=1"],
  ["-\u0000"],
  ["-logtostderr=false", "-stderrthreshold", "INFO", "-vmodule=a=1,b=2"],
];

const TRICKY_FOR_ODD: string[][] = [
  [],
  ["-h"],
  ["-h=false"],
  ["-help"],
  ["-help", "x"],
  ["--help=", "y"],
  ["-x", "-y=false", "-n", "-5", "-u", "0x10", "-s", ""],
  ["-ñ"],
  ["-ñ=0"],
  ["-big=9223372036854775807"],
  ["-B=1", "-_z=2", "-a.b-c=3"],
  ["-foo"],
];

Deno.test({
  name: "hand-written tricky vectors parse exactly as Go's flag package parses them",
  ...requires({ commands: ["go"] }),
  async fn() {
    await assertSameAsGo([
      { program: PROGRAM_NAME, table: FLAGS, vectors: TRICKY_FOR_CONFIG },
      { program: "odd", table: ODD_TABLE, vectors: TRICKY_FOR_ODD },
      { program: "", table: EMPTY_TABLE, vectors: [[], ["-h"], ["-x"], ["a", "-x"], ["--"]] },
    ]);
  },
});

// Characters whose printability is the same in Go 1.19's Unicode 13 and in V8's tables.
const CHARS = [
  ..."abcxyzABCXYZ0123456789-_=+./: ",
  "\t",
  "\n",
  "\x00",
  "\x07",
  "\x1b",
  "\x7f",
  '"',
  "\\",
  "`",
  "é",
  "ñ",
  "\u00a0",
  "\u00ad",
  "\u0301",
  "\u2028",
  "\u200b",
  "\ufeff",
  "\ufffd",
  "中",
  "😀",
  "\u{1d11e}",
  "\u{e0001}",
];

const INT_EDGES = [
  "9223372036854775807",
  "9223372036854775808",
  "18446744073709551615",
  "18446744073709551616",
  "99999999999999999999",
  "0x7fffffffffffffff",
  "0x8000000000000000",
  "0xffffffffffffffff",
  "0x1_0000_0000_0000_0000",
  "0o1777777777777777777777",
  "01777777777777777777777",
  "02000000000000000000000",
];

function generator(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const chance = (p: number) => random() < p;

  function randomText(maxLength: number): string {
    let text = "";
    const length = Math.floor(random() * (maxLength + 1));
    for (let i = 0; i < length; i++) text += pick(CHARS);
    return text;
  }

  function number(): string {
    if (chance(0.15)) return pick(["", "+", "-", "--", "+-"]) + pick(INT_EDGES);
    const sign = pick(["", "", "", "+", "-", "--"]);
    const prefix = pick(["", "", "", "0", "0x", "0X", "0o", "0O", "0b", "0B", "0_", "_"]);
    const alphabet = pick(["0123456789", "01", "01234567", "0123456789abcdefABCDEF", "0189_xz "]);
    let digits = "";
    const length = Math.floor(random() * (chance(0.2) ? 24 : 5));
    for (let i = 0; i < length; i++) digits += chance(0.08) ? "_" : pick([...alphabet]);
    return sign + prefix + digits;
  }

  function value(): string {
    switch (Math.floor(random() * 4)) {
      case 0:
        return number();
      case 1:
        return pick(["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false"]) +
          (chance(0.1) ? pick(["e", " ", "x"]) : "");
      case 2:
        return pick(["", "-", "--", "-once", "=", "json", "text", "/etc/config/", "a=b"]);
      default:
        return randomText(6);
    }
  }

  /** One to three integer flags of NUMBER_TABLE with generated numbers. */
  function numbers(): string[] {
    const args: string[] = [];
    const count = 1 + Math.floor(random() * 3);
    for (let i = 0; i < count; i++) {
      const name = pick(["-n", "-u", "--n", "--u"]);
      if (chance(0.5)) args.push(`${name}=${number()}`);
      else args.push(name, number());
    }
    return args;
  }

  function vector(names: readonly string[]): string[] {
    const args: string[] = [];
    const length = Math.floor(random() * 7);
    for (let i = 0; i < length; i++) {
      const kind = random();
      if (kind < 0.7) {
        const dashes = pick(["-", "-", "-", "--", "--", "---"]);
        const name = chance(0.85)
          ? pick(names)
          : pick(["h", "help", "foo", "", "=", "-x", "é", randomText(3)]);
        args.push(dashes + name + (chance(0.5) ? "=" + value() : ""));
      } else if (kind < 0.85) {
        args.push(value());
      } else {
        args.push(pick(["x", "-", "--", "", "a=b", "-once"]));
      }
    }
    return args;
  }

  return { vector, numbers };
}

const NUMBER_TABLE: readonly FlagSpec[] = [
  { name: "n", kind: "int", default: 0n, usage: "an int" },
  { name: "u", kind: "uint", default: 0n, usage: "a uint" },
];

Deno.test({
  name: "3,600 random vectors parse exactly as Go's flag package parses them",
  ...requires({ commands: ["go"] }),
  async fn() {
    const given = Deno.env.get("FLAGS_SEED");
    const seed = given !== undefined ? Number(given) : Math.floor(Math.random() * 2 ** 32);
    const { vector, numbers } = generator(prng(seed));
    const configNames = FLAGS.map((f) => f.name);
    const oddNames = ODD_TABLE.map((f) => f.name);
    const suites: Suite[] = [
      {
        program: PROGRAM_NAME,
        table: FLAGS,
        vectors: Array.from({ length: 2000 }, () => vector(configNames)),
      },
      {
        program: "odd",
        table: ODD_TABLE,
        vectors: Array.from({ length: 600 }, () => vector(oddNames)),
      },
      { program: "numbers", table: NUMBER_TABLE, vectors: Array.from({ length: 1000 }, numbers) },
    ];
    await assertSameAsGo(suites, seed);
  },
});

Deno.test("results are typed by the table and last value wins", () => {
  const result = parseFlags(FLAGS, ["-interval", "7", "-interval=0x10", "-once", "rest", "-v"]);
  assert.equal(result.kind, "ok");
  if (result.kind !== "ok") return;
  const interval: bigint = result.values.interval;
  const once: boolean = result.values.once;
  const input: string = result.values.input;
  assert.equal(interval, 16n);
  assert.equal(once, true);
  assert.equal(input, "/etc/config/");
  assert.deepEqual([...result.set].sort(), ["interval", "once"]);
  assert.deepEqual(result.rest, ["rest", "-v"]);
});

Deno.test("Go's error texts, word for word", () => {
  const cases: [string[], string][] = [
    [["-foo"], "flag provided but not defined: -foo"],
    [["-input"], "flag needs an argument: -input"],
    [["---x"], "bad flag syntax: ---x"],
    [["-interval=abc"], 'invalid value "abc" for flag -interval: parse error'],
    [
      ["-interval=99999999999999999999"],
      'invalid value "99999999999999999999" for flag -interval: value out of range',
    ],
    [["-events=x"], 'invalid boolean value "x" for -events: parse error'],
  ];
  for (const [args, message] of cases) {
    assert.deepEqual(parseFlags(FLAGS, args), { kind: "error", message });
  }
  assert.deepEqual(parseFlags(FLAGS, ["-help"]), { kind: "help" });
});

Deno.test("strconv edge cases: ParseInt/ParseUint base 0, ParseBool", () => {
  assert.deepEqual(parseGoInt("-0x8000000000000000"), { ok: true, value: -(2n ** 63n) });
  assert.deepEqual(parseGoInt("0x8000000000000000"), { ok: false, error: "value out of range" });
  assert.deepEqual(parseGoUint("0xffff_ffff_ffff_ffff"), { ok: true, value: 2n ** 64n - 1n });
  assert.deepEqual(parseGoUint("+1"), { ok: false, error: "parse error" });
  assert.deepEqual(parseGoInt("1_0"), { ok: true, value: 10n });
  assert.deepEqual(parseGoInt("0_10"), { ok: true, value: 8n });
  assert.deepEqual(parseGoInt("1__0"), { ok: false, error: "parse error" });
  assert.deepEqual(parseGoInt("99999999999999999999_"), { ok: false, error: "value out of range" });
  assert.equal(parseGoBool("True"), true);
  assert.equal(parseGoBool("yes"), undefined);
});

Deno.test("goQuote escapes as Go's %q does", () => {
  assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(goQuote("\x07\b\f\n\r\t\v\x00\x7f"), '"\\a\\b\\f\\n\\r\\t\\v\\x00\\x7f"');
  assert.equal(goQuote("é中😀"), '"é中😀"');
  assert.equal(goQuote("\u00a0\u00ad\u2028\ufeff"), '"\\u00a0\\u00ad\\u2028\\ufeff"');
  assert.equal(goQuote("\u{e0001}"), '"\\U000e0001"');
  assert.equal(goQuote("\ud800x"), '"\\xed\\xa0\\x80x"');
});

Deno.test("flagTableProblems finds what Go's FlagSet.Var would panic on", () => {
  assert.deepEqual(flagTableProblems(FLAGS), []);
  const bad: FlagSpec[] = [
    { name: "-a", kind: "bool", default: false, usage: "" },
    { name: "b=c", kind: "bool", default: false, usage: "" },
    { name: "d", kind: "bool", default: false, usage: "" },
    { name: "d", kind: "string", default: "", usage: "" },
  ];
  assert.deepEqual(flagTableProblems(bad), [
    'flag "-a" begins with -',
    'flag "b=c" contains =',
    "flag redefined: d",
  ]);
});
