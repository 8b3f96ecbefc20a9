import assert from "node:assert/strict";
import { compileGoRegexp } from "../src/patterns/regexp.ts";
import { contains, foldClosure, negate, normalize } from "../src/patterns/codeset.ts";
import { Matcher } from "../src/patterns/engine.ts";
import { compileProgram } from "../src/patterns/program.ts";
import { parseGoRegexp } from "../src/patterns/syntax.ts";

function compile(pattern: string) {
  const result = compileGoRegexp(pattern);
  if (!result.ok) throw new Error(`${pattern}: ${result.message}`);
  return result.regexp;
}

Deno.test("code sets: normalize, negate, contains, fold closure", () => {
  assert.deepEqual(normalize([5, 9, 1, 3, 4, 4, 20, 25]), [1, 9, 20, 25]);
  assert.deepEqual(negate([0, 9, 11, 0x10ffff]), [10, 10]);
  assert(contains([1, 9, 20, 25], 22));
  assert(!contains([1, 9, 20, 25], 10));
  // k folds with K and the Kelvin sign, as Go's unicode.SimpleFold says.
  assert.deepEqual(foldClosure([0x6b, 0x6b]), [0x4b, 0x4b, 0x6b, 0x6b, 0x212a, 0x212a]);
});

Deno.test("the patterns of a table match as one automaton: any of them", () => {
  const joined = new Matcher(
    compileProgram(["^-A INPUT -j ACCEPT$", "DROP$", "\\bfoo\\b"].map(parseGoRegexp)),
  );
  assert(joined.test("-A INPUT -j ACCEPT"));
  assert(joined.test("-A FORWARD -j DROP"));
  assert(joined.test("x foo y"));
  assert(!joined.test("-A INPUT -j ACCEPT "));
  assert(!joined.test("xfoo"));
  assert(!new Matcher(compileProgram([])).test("anything"));
});

Deno.test("counted repetition keeps its exact bounds", () => {
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

Deno.test("astral code points are one character: . and classes see code points", () => {
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
