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
      collectGarbage: () => {
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

Deno.test("with the monitor's V8 flags, collectGarbage frees what nothing holds", async () => {
  const v8 = monitorArgs().find((arg) => arg.startsWith("--v8-flags="));
  assert.ok(v8?.split(/[=,]/).includes("--expose-gc"), "the monitor runs with --expose-gc");
  const script = `
    import { collectGarbage } from "${ROOT}/src/gc.ts";
    let held = Array.from({ length: 200_000 }, (_, i) => ({ i, text: "x".repeat(20) + i }));
    const before = Deno.memoryUsage().heapUsed;
    held = [];
    collectGarbage();
    console.log(JSON.stringify({ before, after: Deno.memoryUsage().heapUsed, kept: held.length }));
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", v8!, script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(output.code, 0);
  const { before, after } = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.ok(before - after > 10 * 1024 * 1024, `heap ${before} -> ${after}: the garbage went`);
});
