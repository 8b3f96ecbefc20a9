/**
 * The benchmark suite's quick mode (50 services, one run of everything, no file
 * written), so the suite cannot rot: every figure BENCHMARKS.md reports is produced, and
 * the Go baseline and our program find the same unexpected rules, the planted ones. No
 * timing is asserted.
 */
import assert from "node:assert/strict";
import { missingFigures, runSuite } from "../bench/suite.ts";
import { renderMarkdown } from "../bench/report.ts";
import { netnsRequires } from "./_support/netns.ts";
import { missing } from "./_support/requires.ts";

const needs = (() => {
  const netns = netnsRequires({ backends: ["nft", "legacy"], families: ["ipv4"] });
  if (netns.ignore) return netns;
  // go-iptables itself is installed by the suite (apt-get) when it is missing.
  return {
    ignore: missing({ root: true, commands: ["go", "apt-get", "dpkg-query"] }) !== undefined,
  };
})();

Deno.test({
  name: "the benchmark suite's quick mode produces every figure, and Go and ours agree",
  ...needs,
  // A hang guard, not a timing: the quick mode takes seconds.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const guard = setTimeout(() => {
      console.error("bench smoke test: still running after 5 minutes");
      Deno.exit(1);
    }, 300_000);
    try {
      const progress: string[] = [];
      const result = await runSuite({ small: true, progress: (line) => progress.push(line) });
      assert.deepEqual(missingFigures(result), [], progress.join("\n"));
      assert.deepEqual(result.scenarios.map((s) => s.spec.id), [
        "nft-5k",
        "legacy-1k",
        "legacy-20k",
        "nft-20k",
      ]);
      for (const s of result.scenarios) {
        assert.equal(s.planted.length, 5, s.spec.id);
        assert.deepEqual(s.ours.unexpected, s.planted, `${s.spec.id}: ours`);
        if (s.go !== undefined) {
          assert.deepEqual(s.go.unexpected, s.planted, `${s.spec.id}: Go baseline`);
          assert.equal(s.go.lines, s.ours.lines, `${s.spec.id}: lines checked`);
        }
        if (s.sameRules !== null) assert.ok(s.sameRules, `${s.spec.id}: same lines listed`);
        assert.ok(s.agree, s.spec.id);
      }
      assert.ok(result.matchAlone?.agree, "matching alone: same unexpected rules");
      const markdown = renderMarkdown(result);
      for (const heading of ["## Machine", "## Targets", "## Per ruleset", "## Memory"]) {
        assert.ok(markdown.includes(heading), heading);
      }
      assert.ok(markdown.includes("## Matching alone"));
      assert.ok(markdown.includes("## Commands"));
    } finally {
      clearTimeout(guard);
    }
  },
});
