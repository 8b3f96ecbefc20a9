/**
 * `deno task bench --footprint` rewrites only the footprint sections of BENCHMARKS.md: the
 * rest stays as the last full run wrote it.
 */
import assert from "node:assert/strict";
import { spliceFootprint } from "../bench/suite.ts";

const SECTION = ["## Footprint: memory", "", "new memory", "", "## Footprint: start-up", "new", ""];

Deno.test("the footprint sections replace the old ones and nothing else", () => {
  const before = [
    "# Benchmarks",
    "## Targets",
    "t",
    "## Footprint: memory",
    "old memory",
    "## Footprint: start-up to a verdict",
    "old start-up",
    "## Memory",
    "m",
  ].join("\n");
  assert.equal(
    spliceFootprint(before, SECTION),
    ["# Benchmarks", "## Targets", "t", ...SECTION, "## Memory", "m"].join("\n"),
  );
});

Deno.test("without footprint sections they go before Memory, or at the end", () => {
  assert.equal(
    spliceFootprint("# B\n## Targets\nt\n## Memory\nm", SECTION),
    ["# B", "## Targets", "t", ...SECTION, "## Memory", "m"].join("\n"),
  );
  assert.equal(spliceFootprint("# B\nx", SECTION), ["# B", "x", ...SECTION].join("\n"));
});
