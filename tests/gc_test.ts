import assert from "node:assert/strict";
import { parseCommandLine } from "../src/cli/config.ts";
import { runDaemon } from "../src/daemon.ts";
import type { Reporting } from "../src/reporting.ts";
import { createLogger } from "../src/report/log.ts";
import { monitorArgs, ROOT } from "./_support/cli.ts";

const DUMP = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n";

Deno.test("the daemon hands each check's garbage back once it is reported", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rules = `${dir}/rules`;
    await Deno.writeTextFile(rules, DUMP);
    const parsed = parseCommandLine(
      [
        `-rulesFile=${rules}`,
        "-interval=1",
        `-input=${ROOT}/patterns/ipv4`,
        "-nftables=false",
        "-dryRun",
      ],
      {},
    );
    if (parsed.kind !== "run") throw new Error(parsed.stderr);
    const stop = new AbortController();
    const events: string[] = [];
    const reporting: Reporting = {
      reportCheck: () => (events.push("report"), Promise.resolve([])),
      checkBlockedWrites: () => (events.push("counter"), Promise.resolve({ notReported: [] })),
      close: () => Promise.resolve(),
    };
    const code = await runDaemon(parsed.config, {
      log: createLogger({ verbosity: 0, sink: () => {} }),
      reporting: Promise.resolve(reporting),
      stop: stop.signal,
      random: () => 0,
      releaseMemory: () => {
        events.push("gc");
        if (events.filter((event) => event === "gc").length === 2) stop.abort();
      },
    });
    assert.equal(code, 0);
    assert.deepEqual(events, ["report", "counter", "gc", "report", "counter", "gc"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with the monitor's V8 flags, both collections free what nothing holds", async () => {
  const v8 = monitorArgs().find((arg) => arg.startsWith("--v8-flags="));
  assert.ok(v8?.split(/[=,]/).includes("--expose-gc"), "the monitor runs with --expose-gc");
  const script = `
    import { collectGarbage, releaseMemory } from "${ROOT}/src/gc.ts";
    const garbage = () => Array.from({ length: 200_000 }, (_, i) => ({ i, text: "x".repeat(20) + i }));
    const result = {};
    for (const [name, collect] of [["collect", collectGarbage], ["release", releaseMemory]]) {
      let held = garbage();
      const before = Deno.memoryUsage();
      held = [];
      collect();
      const after = Deno.memoryUsage();
      result[name] = { used: before.heapUsed - after.heapUsed, total: before.heapTotal - after.heapTotal };
    }
    console.log(JSON.stringify(result));
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", v8!, script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(output.code, 0);
  const freed = JSON.parse(new TextDecoder().decode(output.stdout));
  const MiB = 1024 * 1024;
  assert.ok(freed.collect.used > 10 * MiB, `collectGarbage: ${JSON.stringify(freed.collect)}`);
  assert.ok(freed.release.used > 10 * MiB, `releaseMemory: ${JSON.stringify(freed.release)}`);
  assert.ok(
    freed.release.total > 10 * MiB,
    `releaseMemory gives pages back: ${freed.release.total}`,
  );
});
