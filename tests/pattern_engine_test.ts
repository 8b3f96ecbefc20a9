import assert from "node:assert/strict";
import { parseGoRegexp } from "../src/patterns/syntax.ts";
import { emitSource } from "../src/patterns/emit.ts";
import { compileGoRegexp, linearEngineAvailable } from "../src/patterns/regexp.ts";
import { contains, foldClosure, negate, normalize } from "../src/patterns/codeset.ts";

function compile(pattern: string) {
  const result = compileGoRegexp(pattern);
  if (!result.ok) throw new Error(`${pattern}: ${result.message}`);
  return result.regexp;
}

Deno.test("the test run has V8's linear-time engine (the V8 flags of deno.json)", () => {
  assert(linearEngineAvailable, "run tests through `deno task test`");
});

Deno.test("code sets: normalize, negate, contains, fold closure", () => {
  assert.deepEqual(normalize([5, 9, 1, 3, 4, 4, 20, 25]), [1, 9, 20, 25]);
  assert.deepEqual(negate([0, 9, 11, 0x10ffff]), [10, 10]);
  assert(contains([1, 9, 20, 25], 22));
  assert(!contains([1, 9, 20, 25], 10));
  // k folds with K and the Kelvin sign, as Go's unicode.SimpleFold says.
  assert.deepEqual(foldClosure([0x6b, 0x6b]), [0x4b, 0x4b, 0x6b, 0x6b, 0x212a, 0x212a]);
});

Deno.test("every emitted source is accepted by V8's linear-time engine, however deep the counts", () => {
  const patterns = [
    "a{1000}",
    "(a{100}){10}",
    "((a{10}){10}){10}",
    "(?:a{2,999})",
    "(x{3,}y){300}",
    "(ab|c{20}){1,50}",
    "[^a]{999}",
    "(?i)(k{31}s){32}",
    "\\p{Greek}{100}",
    // repeats over bodies that can match empty: V8 counts them higher
    "((t|){2,}){6}",
    "((t|)+){16}",
    "(a{16}|)+",
    "(\\z|N{16})+",
    "(((x?)+){4}){4}",
  ];
  for (const pattern of patterns) {
    const node = parseGoRegexp(pattern);
    for (const variant of ["bmp", "full"] as const) {
      const source = emitSource(node, variant);
      new RegExp(source, "l"); // throws when V8 cannot run it in linear time
    }
  }
});

Deno.test("counted repetition keeps its exact bounds after splitting", () => {
  const re = compile("^(ab){17,40}$");
  assert(!re.test("ab".repeat(16)));
  assert(re.test("ab".repeat(17)));
  assert(re.test("ab".repeat(40)));
  assert(!re.test("ab".repeat(41)));
  const nested = compile("^((a{3}){7}b){2,3}$");
  assert(nested.test(("a".repeat(21) + "b").repeat(2)));
  assert(!nested.test(("a".repeat(20) + "b").repeat(2)));
  assert(!nested.test(("a".repeat(21) + "b").repeat(4)));
  const open = compile("^a{20,}$");
  assert(!open.test("a".repeat(19)));
  assert(open.test("a".repeat(500)));
});

Deno.test("astral lines take the full variant: . is one code point", () => {
  assert(compile("^.$").test("😀"));
  assert(!compile("^..$").test("😀"));
  assert(compile("^[^a]x$").test("😀x"));
  assert(compile("^\\x{1F600}+$").test("😀😀"));
  assert(!compile("^[\\x{1F600}-\\x{1F64F}]$").test("😀a"));
  // `\B` must not see a boundary inside a surrogate pair.
  assert(!compile("^a.*\\Bb").test("a😀b"));
});

Deno.test("pathological patterns finish on 100,000-character lines (a hang guard, not a timing)", () => {
  const line = "a".repeat(100_000) + "!";
  const cases: [string, boolean][] = [
    ["(a+)+$", false],
    ["(x+x+)+y", false],
    ["(.*a){20}$", false],
    ["(.*a){20}", true],
    ["(a|aa)+$", false],
    ["(\\w+\\s?)+$", false],
    ["^(a|a?)+$", false],
  ];
  for (const [pattern, expected] of cases) {
    const started = Date.now();
    assert.deepEqual(compile(pattern).test(line), expected, pattern);
    const seconds = (Date.now() - started) / 1000;
    assert(seconds < 10, `${pattern} took ${seconds}s: exponential backtracking?`);
  }
});
