/**
 * `deno task compile`: writes the single-file binary `./azure-iptables-monitor` with exactly
 * the permissions and V8 flags of `deno task monitor`. The flags are read from the
 * `monitor` task in deno.json, the one place they are written, so the binary and the
 * task cannot drift apart.
 *
 * `deno compile` fetches its runtime (`denort`) from dl.deno.land on first use, or takes
 * it from `DENORT_BIN`. Where neither works the build stops with one message saying why
 * and what to do, never with a stack trace.
 *
 * Usage: `deno task compile [--output=PATH]`
 *
 * @module
 */

import { PROGRAM_NAME, VERSION } from "../src/cli/config.ts";

const root = new URL("../", import.meta.url);

/** The repository root as a path. */
export const ROOT: string = decodeURIComponent(root.pathname).replace(/\/$/, "");

/** Where the binary goes unless `--output` says otherwise. */
export const DEFAULT_OUTPUT = `${ROOT}/${PROGRAM_NAME}`;

/** The entry point both the task and the binary run. */
export const ENTRY_POINT = "main.ts";

/**
 * The flags `deno compile` carries into the binary unchanged. Anything else in the
 * `monitor` task (a flag only `deno run` knows, or `--allow-all`) stops the build, so a
 * new flag is a decision, not an accident.
 */
const CARRIED_FLAG =
  /^--(quiet|no-prompt|v8-flags=.+|(allow|deny)-(read|write|net|env|sys|run|ffi|import)(=.+)?|ignore-(env|read)(=.+)?)$/;

/** The flags of the `monitor` task in deno.json (between `deno run` and `main.ts`). */
export function monitorFlags(denoJsonText: string): string[] {
  const config: unknown = JSON.parse(denoJsonText);
  const task = typeof config === "object" && config !== null && "tasks" in config &&
      typeof config.tasks === "object" && config.tasks !== null && "monitor" in config.tasks
    ? config.tasks.monitor
    : undefined;
  if (typeof task !== "string") throw new Error("deno.json has no `monitor` task");
  const words = task.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== ENTRY_POINT) {
    throw new Error(`the monitor task must read \`deno run FLAGS... ${ENTRY_POINT}\`: ${task}`);
  }
  const flags = words.slice(2, -1);
  for (const flag of flags) {
    if (!CARRIED_FLAG.test(flag)) {
      throw new Error(
        `the monitor task's flag ${flag} cannot be carried into the binary: only --quiet, ` +
          "--no-prompt, --v8-flags and narrow --allow-*/--deny-*/--ignore-* flags can",
      );
    }
  }
  return flags;
}

/** The `deno compile` arguments for these task flags: nothing added, nothing dropped. */
export function compileArgs(flags: readonly string[], options: { output: string }): string[] {
  return [
    "compile",
    ...flags,
    "--output",
    options.output,
    `${ROOT}/${ENTRY_POINT}`,
  ];
}

/** The outcome of a build: the binary's path, or the one message that says what to do. */
export type BuildResult = { ok: true; output: string } | { ok: false; message: string };

// deno compile's own error text, matched to explain it: the runtime download failed, or
// DENORT_BIN points nowhere.
const DOWNLOAD_FAILED = /dl\.deno\.land|denort-[a-z0-9_-]+\.zip/i;
const DENORT_MISSING = /Could not find denort at '([^']*)'/;

function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** The innermost cause deno printed (`Caused by:` list), or its first error line. */
function deepestCause(stderr: string): string {
  const all = stripAnsi(stderr).split("\n").map((line) => line.trim());
  const backtrace = all.findIndex((line) => line.startsWith("Stack backtrace"));
  const lines = backtrace === -1 ? all : all.slice(0, backtrace);
  const causes = lines.filter((line) => /^\d+: /.test(line)).map((line) =>
    line.replace(/^\d+: /, "")
  );
  const error = lines.find((line) => line.startsWith("error:"))?.replace(/^error:\s*/, "");
  return causes.at(-1) ?? error ?? (lines.find((line) => line !== "") || "no error output");
}

/** The runtime archive for this platform, as dl.deno.land names it. */
function denortArchive(): string {
  return `https://dl.deno.land/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
}

/** Why `deno compile` failed, in one message that says what to do about it. */
export function explainCompileFailure(stderr: string, denortBin: string | undefined): string {
  const text = stripAnsi(stderr);
  const missing = DENORT_MISSING.exec(text);
  if (missing !== null) {
    return `DENORT_BIN=${missing[1]} does not exist: point DENORT_BIN at the denort binary of ` +
      `Deno ${Deno.version.deno} (unpack ${denortArchive()}), or unset it where ` +
      "dl.deno.land is reachable";
  }
  if (denortBin === undefined && DOWNLOAD_FAILED.test(text)) {
    return `deno compile could not download its runtime (denort of Deno ${Deno.version.deno}) ` +
      `from dl.deno.land: ${deepestCause(text)}. Set DENORT_BIN to a denort binary of ` +
      `Deno ${Deno.version.deno} for ${Deno.build.target} (unpack ${denortArchive()}), ` +
      "or build where dl.deno.land is reachable (the Containerfile does)";
  }
  return `deno compile failed: ${deepestCause(text)}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Runs `deno compile` with the monitor task's flags. Does not run the result: with a
 * `DENORT_BIN` that is not a Deno runtime, `deno compile` still writes a file.
 */
export async function buildBinary(options: {
  output?: string;
  /** The runtime to build on; by default `DENORT_BIN`, else deno compile downloads it. */
  denortBin?: string;
}): Promise<BuildResult> {
  const output = options.output ?? DEFAULT_OUTPUT;
  const denortBin = options.denortBin ?? nonEmpty(Deno.env.get("DENORT_BIN"));
  if (denortBin !== undefined && !isFile(denortBin)) {
    const said = `Could not find denort at '${denortBin}'`;
    return { ok: false, message: explainCompileFailure(said, denortBin) };
  }
  let flags: string[];
  try {
    flags = monitorFlags(await Deno.readTextFile(`${ROOT}/deno.json`));
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  const env: Record<string, string> = { NO_COLOR: "1" };
  if (denortBin !== undefined) env.DENORT_BIN = denortBin;
  const command = new Deno.Command(Deno.execPath(), {
    args: compileArgs(flags, { output }),
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const result = await command.output();
  if (!result.success) {
    return {
      ok: false,
      message: explainCompileFailure(new TextDecoder().decode(result.stderr), denortBin),
    };
  }
  return { ok: true, output };
}

/** Runs the new binary with `-version`; an error message when it is not our program. */
export async function smokeTest(binary: string): Promise<string | undefined> {
  const expected = `${PROGRAM_NAME} ${VERSION}`;
  let said: string;
  try {
    const result = await new Deno.Command(binary, {
      args: ["-version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    said = new TextDecoder().decode(result.stdout).trim() ||
      new TextDecoder().decode(result.stderr).trim();
  } catch (error) {
    said = error instanceof Error ? error.message : String(error);
  }
  if (said === expected) return undefined;
  return `the binary ${binary} does not run as ${PROGRAM_NAME} ` +
    `(\`-version\` printed ${JSON.stringify(said.slice(0, 200))}): DENORT_BIN must be the ` +
    `denort binary of Deno ${Deno.version.deno} for ${Deno.build.target} (${denortArchive()})`;
}

/** What the command line asked for, or why it cannot be understood. */
function parseArgs(args: readonly string[]): { output: string } | string {
  let output = DEFAULT_OUTPUT;
  for (const arg of args) {
    const [name, ...rest] = arg.split("=");
    const value = rest.join("=");
    if (name === "--output" && value !== "") output = value;
    else return `unknown argument ${arg}`;
  }
  return { output };
}

const USAGE = "usage: deno task compile [--output=PATH]\n" +
  "  Builds the binary with the permissions and V8 flags of `deno task monitor`.\n";

async function main(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const parsed = parseArgs(args);
  if (typeof parsed === "string") {
    console.error(`compile: ${parsed}\n${USAGE}`);
    return 2;
  }
  const built = await buildBinary(parsed);
  if (!built.ok) {
    console.error(`compile: ${built.message}`);
    return 1;
  }
  const problem = await smokeTest(built.output);
  if (problem !== undefined) {
    await Deno.remove(built.output).catch(() => {});
    console.error(`compile: ${problem}`);
    return 1;
  }
  const size = (await Deno.stat(built.output)).size / 1024 / 1024;
  console.log(
    `compile: wrote ${built.output} (${size.toFixed(0)} MiB) with the permissions and V8 ` +
      "flags of `deno task monitor`",
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (error) {
    console.error(`compile: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exitCode = 1;
  }
}
