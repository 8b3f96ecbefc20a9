import assert from "node:assert/strict";
import { createLogger, formatHeader, type Logger } from "../src/report/log.ts";

// 26 November 2024, 14:48:52.123 local time.
const FIXED = new Date(2024, 10, 26, 14, 48, 52, 123);
const PID = String(Deno.pid).padStart(7, " ");

function capture(options: { verbosity: number; skipHeaders?: boolean; addDirHeader?: boolean }): {
  logger: Logger;
  records: string[];
} {
  const records: string[] = [];
  const logger = createLogger({ ...options, sink: (r) => records.push(r), now: () => FIXED });
  return { logger, records };
}

/** The line number of the statement that calls this function, from its own stack. */
function lineOfCaller(): number {
  const stack = new Error().stack ?? "";
  const frame = stack.split("\n")[2] ?? "";
  const match = /:(\d+):\d+\)?$/.exec(frame);
  assert(match !== null, `no line in ${frame}`);
  return Number(match[1]);
}

Deno.test("formatHeader prints klog's header, pid right-aligned in 7 columns", () => {
  assert.deepEqual(
    formatHeader("I", FIXED, 4242, "scan.ts", 88),
    "I1126 14:48:52.123000    4242 scan.ts:88] ",
  );
  const early = new Date(2025, 0, 2, 3, 4, 5, 6);
  assert.deepEqual(
    formatHeader("W", early, 1, "a.ts", 1),
    "W0102 03:04:05.006000       1 a.ts:1] ",
  );
  assert.deepEqual(formatHeader("E", early, 1234567, "a.ts", 1).slice(21), " 1234567 a.ts:1] ");
  assert.deepEqual(formatHeader("F", early, 12345678, "a.ts", 1).slice(21), " 2345678 a.ts:1] ");
});

Deno.test("records carry severity, fixed time, pid and the caller's file:line", () => {
  const { logger, records } = capture({ verbosity: 0 });
  const line = lineOfCaller() + 1;
  logger.info("hello");
  logger.warning("careful");
  logger.error("broken");
  assert.deepEqual(records, [
    `I1126 14:48:52.123000 ${PID} log_test.ts:${line}] hello`,
    `W1126 14:48:52.123000 ${PID} log_test.ts:${line + 1}] careful`,
    `E1126 14:48:52.123000 ${PID} log_test.ts:${line + 2}] broken`,
  ]);
});

Deno.test("file:line points at the caller through v(), infoV and a helper function", () => {
  const { logger, records } = capture({ verbosity: 5 });
  const line = lineOfCaller() + 1;
  logger.v(2).info("via v");
  logger.infoV(3, "via infoV");
  const verbose = logger.v(1);
  verbose.info("kept object");
  const { warning } = logger;
  warning("detached method");
  function helper() {
    logger.error("from helper");
  }
  helper();
  const lines = records.map((r) => /log_test\.ts:(\d+)\]/.exec(r)?.[1]);
  assert.deepEqual(lines, [line, line + 1, line + 3, line + 5, line + 7].map(String));
});

Deno.test("verbosity filters v() and infoV but never info, warning, error", () => {
  const { logger, records } = capture({ verbosity: 2, skipHeaders: true });
  logger.v(2).info("v2");
  logger.v(3).info("v3");
  logger.infoV(0, "iv0");
  logger.infoV(3, "iv3");
  logger.info("info");
  logger.warning("warning");
  logger.error("error");
  assert.deepEqual(records, ["v2", "iv0", "info", "warning", "error"]);
  assert.deepEqual(logger.v(2).enabled, true);
  assert.deepEqual(logger.v(3).enabled, false);
  assert.deepEqual(logger.verbosity, 2);
});

Deno.test("-skip_headers prints the bare message; one trailing newline is dropped", () => {
  const { logger, records } = capture({ verbosity: 0, skipHeaders: true });
  logger.info("plain");
  logger.info("ends with newline\n");
  logger.info("two\nlines");
  assert.deepEqual(records, ["plain", "ends with newline", "two\nlines"]);
});

Deno.test("-add_dir_header shows the caller's directory", () => {
  const { logger, records } = capture({ verbosity: 0, addDirHeader: true });
  logger.info("x");
  assert.match(records[0], / tests\/log_test\.ts:\d+\] x$/);
});

Deno.test("the default sink writes whole klog lines to stderr", async () => {
  const script = [
    `import { createLogger } from ${
      JSON.stringify(new URL("../src/report/log.ts", import.meta.url).href)
    };`,
    `const log = createLogger({ verbosity: 1 });`,
    `log.info("first");`,
    `log.v(2).info("hidden");`,
    `log.error("x".repeat(200000));`,
  ].join("\n");
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.deepEqual(output.code, 0, new TextDecoder().decode(output.stderr));
  const lines = new TextDecoder().decode(output.stderr).split("\n");
  assert.deepEqual(lines.length, 3);
  assert.match(lines[0], /^I\d{4} \d\d:\d\d:\d\d\.\d{6} [ \d]{7} \S+:3\] first$/);
  assert.match(lines[1], /^E\d{4} \d\d:\d\d:\d\d\.\d{6} [ \d]{7} \S+:5\] x{200000}$/);
  assert.deepEqual(lines[2], "");
});
