/**
 * The permissions of `deno task monitor`, which the compiled binary gets too: narrow, what
 * the code needs and no more, carried unchanged into the binary by `deno task compile`,
 * and enough for a real check (run here under exactly those permissions, since the binary
 * itself cannot be built without Deno's runtime download).
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { generateRuleset } from "../bench/ruleset.ts";
import { PROGRAM_NAME, VERSION } from "../src/cli/config.ts";
import {
  buildBinary,
  compileArgs,
  ENTRY_POINT,
  explainCompileFailure,
  monitorFlags,
} from "../tools/compile.ts";
import { monitorArgs, ROOT, runCaptured, runMonitor, type RunResult } from "./_support/cli.ts";
import { netnsRequires, withNetns } from "./_support/netns.ts";
import { hasCommand, missing, requires } from "./_support/requires.ts";
import { type Report, ReportSchema } from "./_support/report_schema.ts";

/** The V8 flags that make matching linear-time; the monitor must never run without them. */
const REGEXP_ENGINE_FLAGS = [
  "--enable-experimental-regexp-engine",
  "--enable-experimental-regexp-engine-on-excessive-backtracks",
  "--regexp-backtracks-before-fallback=10000",
];

function denoJson(): string {
  return Deno.readTextFileSync(`${ROOT}/deno.json`);
}

/** The monitor task's flags, by name: `--allow-run=a,b` gives `allow-run` -> `[a, b]`. */
function flagTable(flags: readonly string[]): Map<string, string[]> {
  const table = new Map<string, string[]>();
  for (const flag of flags) {
    const [name, ...rest] = flag.replace(/^--/, "").split("=");
    const values = rest.length === 0 ? [] : rest.join("=").split(",");
    table.set(name, [...(table.get(name) ?? []), ...values]);
  }
  return table;
}

function parseReport(result: RunResult): Report {
  try {
    return ReportSchema.parse(JSON.parse(result.stdout));
  } catch (error) {
    throw new Error(`no JSON report (exit ${result.code}): ${result.stderr}\n${error}`);
  }
}

function totalRules(report: Report, family: string, source?: string): number {
  return report.families
    .filter((f) => f.family === family && (source === undefined || f.source === source))
    .reduce((sum, f) => sum + f.tables.reduce((n, t) => n + t.rules, 0), 0);
}

function unexpectedRules(report: Report): string[] {
  return report.families.flatMap((f) => f.tables.flatMap((t) => t.unexpected.map((u) => u.rule)));
}

/** No Deno permission problem reached the output: no NotCapable, no --allow-* hint. */
function assertNoPermissionTrouble(result: RunResult): void {
  for (const text of [result.stdout, result.stderr]) {
    assert.doesNotMatch(text, /NotCapable|Requires (read|run|env|net|sys|write) access/);
    assert.doesNotMatch(text, /--allow-/);
  }
}

/**
 * Runs the monitor with the task's exact permissions, its `-rulesFile` fed through a pipe
 * (`<(cat FILE)`, i.e. /dev/fd/N) by bash, the way an operator audits a saved dump.
 * `extraFlags` go before main.ts, as an operator widening the permissions would add them.
 */
async function runWithPipedDump(
  args: string[],
  dumpPath: string,
  extraFlags: string[] = [],
): Promise<RunResult> {
  const deno = monitorArgs();
  const main = deno.pop();
  const argv = [Deno.execPath(), ...deno, ...extraFlags, main ?? ENTRY_POINT, ...args];
  return await runCaptured(
    "bash",
    ["-c", '"$@" -rulesFile=<(cat "$AIM_DUMP")', "bash", ...argv],
    { env: { NO_COLOR: "1", AIM_DUMP: dumpPath } },
  );
}

/** Every source file of the program (main.ts and src/), with its text. */
function programSources(): { path: string; text: string }[] {
  const files = [`${ROOT}/main.ts`];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts")) files.push(path);
    }
  };
  walk(`${ROOT}/src`);
  return files.map((path) => ({ path, text: Deno.readTextFileSync(path) }));
}

Deno.test("the monitor task's permissions are narrow and it matches in linear time", () => {
  const config = JSON.parse(denoJson()) as { tasks: Record<string, string> };
  const flags = flagTable(monitorFlags(denoJson()));
  for (const kind of ["run", "env"]) {
    assert.ok((flags.get(`allow-${kind}`) ?? []).length > 0, `--allow-${kind} names its list`);
  }
  // -input, -input6, -rulesFile, -rulesFile6 and -kubeconfig take any path, so reading is
  // not narrowed to a list: a list would refuse the paths operators pass (README, Permissions).
  assert.deepEqual(flags.get("allow-read"), [], "--allow-read without a list");
  for (const absent of ["allow-all", "A", "allow-write", "allow-sys", "allow-ffi"]) {
    assert.ok(!flags.has(absent), `no --${absent}`);
  }
  assert.ok(flags.has("no-prompt"), "a missing permission fails instead of asking");
  assert.deepEqual(flags.get("ignore-env"), [], "other variables read as unset");
  const testTask = flagTable(config.tasks.test.split(/\s+/)).get("v8-flags") ?? [];
  for (const flag of REGEXP_ENGINE_FLAGS) {
    assert.ok(flags.get("v8-flags")?.includes(flag), `the monitor runs with ${flag}`);
    assert.ok(testTask.includes(flag), `the tests run with ${flag}`);
  }
});

Deno.test("--allow-env lists exactly the variables the program reads", () => {
  const named = new Set<string>();
  const patterns = [
    /Deno\.env\.get\(\s*"([A-Za-z0-9_]+)"\s*\)/g,
    /\benv\(\s*"([A-Za-z0-9_]+)"\s*\)/g,
    /\benv\[\s*"([A-Za-z0-9_]+)"\s*\]/g,
    /process\.env\.([A-Za-z0-9_]+)/g,
    /process\.env\[\s*"([A-Za-z0-9_]+)"\s*\]/g,
  ];
  for (const { path, text } of programSources()) {
    assert.doesNotMatch(
      text,
      /Deno\.env\.toObject|process\.env\)/,
      `${path} lists the environment`,
    );
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) named.add(match[1]);
    }
  }
  const allowed = flagTable(monitorFlags(denoJson())).get("allow-env") ?? [];
  assert.deepEqual([...named].sort(), [...allowed].sort());
});

Deno.test("every command in --allow-run is installed here", () => {
  const commands = flagTable(monitorFlags(denoJson())).get("allow-run") ?? [];
  assert.ok(commands.length > 0);
  if (missing({ commands }) !== undefined) return;
  for (const command of commands) assert.ok(hasCommand(command), command);
});

Deno.test({
  name: "a one-shot check of a piped dump runs under exactly the task's permissions",
  ...requires({ commands: ["bash"] }),
  fn: async () => {
    const generated = generateRuleset({ services: 50, family: "ipv4", userRules: true });
    const dir = await Deno.makeTempDir({ prefix: "aim-permissions-" });
    try {
      const dump = `${dir}/dump`;
      await Deno.writeTextFile(dump, generated.dump);
      // The shipped allowlists: a path the task may read (relative to the repository).
      const result = await runWithPipedDump(
        ["-once", "-dryRun", "-output", "json", "-input=patterns/ipv4"],
        dump,
      );
      assertNoPermissionTrouble(result);
      const report = parseReport(result);
      assert.deepEqual(report.errors, [], result.stderr);
      assert.equal(result.code, 1, "the planted user rules are unexpected");
      assert.match(report.families[0].source, /^file \/dev\/fd\/\d+$/);
      assert.equal(totalRules(report, "ipv4"), generated.lineCount);
      const unexpected = unexpectedRules(report);
      assert.ok(generated.userRules.length > 0);
      for (const planted of generated.userRules) assert.ok(unexpected.includes(planted.rule));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "an -input and a -rulesFile anywhere are readable, as the flags promise",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "aim-permissions-" });
    try {
      const dump = `${dir}/dump`;
      const allow = `${dir}/allow`;
      await Deno.writeTextFile(dump, generateRuleset({ services: 5, family: "ipv4" }).dump);
      await Deno.mkdir(allow);
      await Deno.writeTextFile(`${allow}/global`, "^-[PNA] \n");
      const result = await runMonitor([
        "-once",
        "-dryRun",
        "-output",
        "json",
        `-input=${allow}`,
        `-rulesFile=${dump}`,
      ]);
      assertNoPermissionTrouble(result);
      assert.deepEqual(parseReport(result).errors, []);
      assert.equal(result.code, 0, "every rule matches ^-[PNA] ");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "real rules of both backends and families are read under exactly the task's permissions",
  ...netnsRequires({ backends: ["nft", "legacy"], families: ["ipv4", "ipv6"] }),
  fn: () =>
    withNetns(async (ns) => {
      const v4 = generateRuleset({ services: 20, family: "ipv4" });
      const v6 = generateRuleset({ services: 20, family: "ipv6" });
      await ns.restore("ipv4", "nft", v4.dump);
      await ns.restore("ipv6", "nft", v6.dump);
      const legacyRule = "-A INPUT -s 192.0.2.7/32 -j DROP";
      await ns.restore(
        "ipv4",
        "legacy",
        `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n` +
          `${legacyRule}\nCOMMIT\n`,
      );
      const result = await runMonitor(
        ["-once", "-dryRun", "-output", "json", "-input=patterns/ipv4", "-ipv6"].concat(
          "-input6=patterns/ipv6",
        ),
        { prefix: ["ip", "netns", "exec", ns.name] },
      );
      assertNoPermissionTrouble(result);
      const report = parseReport(result);
      assert.deepEqual(report.errors, [], result.stderr);
      assert.equal(totalRules(report, "ipv4", "iptables-nft-save (nf_tables)"), v4.lineCount);
      assert.equal(totalRules(report, "ipv6", "ip6tables-nft-save (nf_tables)"), v6.lineCount);
      assert.equal(totalRules(report, "ipv4", "iptables-legacy-save (legacy)"), 4);
      assert.ok(unexpectedRules(report).includes(legacyRule));
      assert.equal(result.code, 1);
    }),
});

Deno.test({
  name: "the plain iptables-save fallback is within the permissions too",
  ignore: netnsRequires({ backends: ["nft"], families: ["ipv4"] }).ignore ||
    requires({ commands: ["iptables-save", "ip6tables-save", "nft"] }).ignore,
  fn: async () => {
    const bin = await Deno.makeTempDir({ prefix: "aim-path-" });
    try {
      // A PATH where only the plain save commands (and nft) exist, as on a distribution
      // that ships no -nft-save/-legacy-save names.
      for (const name of ["iptables-save", "ip6tables-save", "nft"]) {
        await Deno.symlink(await Deno.realPath(which(name)), `${bin}/${name}`);
      }
      await withNetns(async (ns) => {
        const v4 = generateRuleset({ services: 3, family: "ipv4" });
        await ns.restore("ipv4", "nft", v4.dump);
        const result = await runMonitor(
          ["-once", "-dryRun", "-output", "json", "-input=patterns/ipv4"],
          { prefix: [which("ip"), "netns", "exec", ns.name], env: { PATH: bin } },
        );
        assertNoPermissionTrouble(result);
        const report = parseReport(result);
        assert.deepEqual(report.errors, [], result.stderr);
        assert.deepEqual(report.families.map((f) => f.source), [
          "iptables-save (nf_tables)",
          "nft",
        ]);
        assert.equal(totalRules(report, "ipv4"), v4.lineCount);
      });
    } finally {
      await Deno.remove(bin, { recursive: true });
    }
  },
});

/** The absolute path of `command` on this process's PATH. */
function which(command: string): string {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${command}`).isFile) return `${dir}/${command}`;
    } catch {
      // not here
    }
  }
  throw new Error(`${command} is not on PATH`);
}

Deno.test("deno compile gets exactly the monitor task's flags", () => {
  const flags = monitorFlags(denoJson());
  const args = compileArgs(flags, { output: "/tmp/out" });
  assert.deepEqual(args, ["compile", ...flags, "--output", "/tmp/out", `${ROOT}/${ENTRY_POINT}`]);
  assert.throws(
    () => monitorFlags(JSON.stringify({ tasks: { monitor: "deno run -A main.ts" } })),
    /cannot be carried/,
  );
  assert.throws(
    () => monitorFlags(JSON.stringify({ tasks: { monitor: "deno run --watch main.ts" } })),
    /cannot be carried/,
  );
});

/** The metadata `deno compile` embeds in a binary: its permissions and V8 flags. */
const Metadata = z.object({
  permissions: z.record(z.string(), z.union([z.array(z.string()), z.boolean(), z.null()])),
  v8_flags: z.array(z.string()),
  log_level: z.string().nullable(),
  entrypoint_key: z.string(),
});

/** Finds the JSON object that starts with `{"argv":` in a compiled binary. */
function embeddedMetadata(bytes: Uint8Array): z.infer<typeof Metadata> {
  const text = new TextDecoder("latin1").decode(bytes);
  const start = text.indexOf('{"argv":');
  assert.notEqual(start, -1, "the binary holds deno compile's metadata");
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) {
      return Metadata.parse(JSON.parse(text.slice(start, i + 1)));
    }
  }
  throw new Error("unterminated metadata");
}

Deno.test({
  name: "the binary deno task compile writes carries the monitor task's permissions and V8 flags",
  ...requires({ commands: ["/usr/bin/true"] }),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "aim-compile-" });
    try {
      // Any file serves as the runtime for looking at what deno compile embeds.
      const denort = `${dir}/fake-denort`;
      await Deno.copyFile("/usr/bin/true", denort);
      const output = `${dir}/${PROGRAM_NAME}`;
      const built = await buildBinary({ output, denortBin: denort });
      assert.ok(built.ok, built.ok ? "" : built.message);
      const metadata = embeddedMetadata(await Deno.readFile(output));

      const flags = flagTable(monitorFlags(denoJson()));
      const expected: Record<string, string[] | null> = {};
      for (const kind of ["read", "write", "net", "env", "sys", "run", "ffi"]) {
        expected[`allow_${kind}`] = flags.get(`allow-${kind}`) ?? null;
        expected[`deny_${kind}`] = flags.get(`deny-${kind}`) ?? null;
      }
      expected.ignore_env = flags.get("ignore-env") ?? null;
      expected.ignore_read = flags.get("ignore-read") ?? null;
      for (const [key, value] of Object.entries(expected)) {
        assert.deepEqual(metadata.permissions[key], value, key);
      }
      assert.equal(metadata.permissions.prompt, !flags.has("no-prompt"));
      const v8 = flags.get("v8-flags") ?? [];
      assert.ok(v8.length >= REGEXP_ENGINE_FLAGS.length);
      assert.deepEqual(metadata.v8_flags.slice(-v8.length), v8);
      assert.equal(metadata.log_level, flags.has("quiet") ? "ERROR" : null);
      assert.equal(metadata.entrypoint_key, ENTRY_POINT);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Runs `deno task compile ARGS` with this environment minus `DENORT_BIN`, plus `env`. */
async function compileTask(args: string[], env: Record<string, string>): Promise<RunResult> {
  const inherited = Deno.env.toObject();
  delete inherited.DENORT_BIN;
  return await runCaptured(Deno.execPath(), ["task", "--quiet", "compile", ...args], {
    clearEnv: true,
    env: { ...inherited, NO_COLOR: "1", ...env },
  });
}

function assertOneClearLine(result: RunResult, pattern: RegExp): void {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line, not a stack trace:\n${result.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(result.stderr, /Stack backtrace|^\s+at /m);
}

Deno.test("deno task compile explains a missing or unusable runtime in one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aim-compile-" });
  try {
    const output = `${dir}/${PROGRAM_NAME}`;
    const missingRuntime = await compileTask([`--output=${output}`], {
      DENORT_BIN: `${dir}/no-such-denort`,
    });
    assertOneClearLine(
      missingRuntime,
      new RegExp(
        `^compile: DENORT_BIN=${dir}/no-such-denort does not exist: .*Deno ` +
          `${Deno.version.deno.replaceAll(".", "\\.")}`,
      ),
    );

    const fake = `${dir}/fake-denort`;
    await Deno.copyFile("/usr/bin/true", fake);
    const notARuntime = await compileTask([`--output=${output}`], { DENORT_BIN: fake });
    assertOneClearLine(notARuntime, /does not run as azure-iptables-monitor.*DENORT_BIN must be/);
    await assert.rejects(Deno.stat(output), Deno.errors.NotFound, "the broken binary is removed");

    // Without DENORT_BIN deno compile downloads its runtime: where that works the binary
    // must run; where it cannot (as here), the task must say why and what to do.
    const download = await compileTask([`--output=${output}`], {});
    if (download.code === 0) {
      const version = await new Deno.Command(output, { args: ["-version"] }).output();
      assert.equal(new TextDecoder().decode(version.stdout), `${PROGRAM_NAME} ${VERSION}\n`);
    } else {
      assertOneClearLine(
        download,
        /^compile: deno compile could not download its runtime .* Set DENORT_BIN to a denort/,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno compile's errors are explained from its own output", () => {
  const offline = "error: Writing deno compile executable to temporary file 'x.tmp'\n\n" +
    "Caused by:\n    0: Setting up base binary.\n    1: error sending request for url " +
    "(https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error " +
    "(Connect): dns error: failed to lookup address information: Name or service not known\n" +
    "    2: dns error\n    3: failed to lookup address information: Name or service not " +
    "known\n\nStack backtrace:\n   0: <unknown>\n";
  const message = explainCompileFailure(offline, undefined);
  assert.match(message, /^deno compile could not download its runtime/);
  assert.match(message, /from dl\.deno\.land: failed to lookup address information/);
  assert.match(message, /Set DENORT_BIN/);
  assert.doesNotMatch(message, /<unknown>|\n/);
  assert.match(
    explainCompileFailure("error: Could not find denort at '/x/denort'\n", "/x/denort"),
    /^DENORT_BIN=\/x\/denort does not exist/,
  );
  assert.equal(
    explainCompileFailure('error: Module not found "file:///main.ts".\n', undefined),
    'deno compile failed: Module not found "file:///main.ts".',
  );
});
