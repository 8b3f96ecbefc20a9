/**
 * The API transport benchmark: its quick mode runs end to end, and the section it owns in
 * BENCHMARKS.md survives the suite's rewrite.
 */

import assert from "node:assert/strict";
import { ownedSections, SECTION_BEGIN, SECTION_END } from "../bench/api_transport.ts";
import { ROOT, runCaptured } from "./_support/cli.ts";
import { requires } from "./_support/requires.ts";

Deno.test("bench: the transport section is found, whole, wherever it is", () => {
  const section = `${SECTION_BEGIN}\n\n## Kubernetes API transport\n\n| a |\n\n${SECTION_END}`;
  assert.deepEqual(ownedSections(`# Benchmarks\n\ntext\n\n${section}\n\n## More\n`), [section]);
  assert.deepEqual(ownedSections("# Benchmarks\n"), []);
  assert.deepEqual(ownedSections(`${SECTION_BEGIN}\nno end`), []);
});

Deno.test({
  name: "bench: the transport benchmark's quick mode measures every row",
  ...requires({ commands: ["openssl"] }),
  async fn() {
    const result = await runCaptured(Deno.execPath(), [
      "run",
      "-A",
      `${ROOT}/bench/api_transport.ts`,
      "--runs",
      "1",
      "--requests",
      "4",
    ]);
    assert.equal(result.code, 0, result.stderr);
    for (const row of ["GET, median", "first GET", "merge-patch", "RSS after the requests"]) {
      const line = result.stdout.split("\n").find((l) => l.includes(row));
      assert.ok(line, `${row} in:\n${result.stdout}`);
      assert.doesNotMatch(line, /NaN|undefined/, line);
    }
  },
});
