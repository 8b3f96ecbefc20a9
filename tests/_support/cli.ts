/**
 * Runs the program the way `deno task monitor` does (same permissions, same V8 flags,
 * read from deno.json so they cannot drift), and captures what it prints.
 */

const root = new URL("../../", import.meta.url);

/** The repository root as a path. */
export const ROOT: string = decodeURIComponent(root.pathname).replace(/\/$/, "");

/** The `deno run` arguments of the `monitor` task, without the leading `deno`. */
export function monitorArgs(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)) as {
    tasks: Record<string, string>;
  };
  const words = config.tasks.monitor.split(/\s+/);
  if (words[0] !== "deno") throw new Error("the monitor task must start with `deno`");
  return words.slice(1).map((word) => (word === "main.ts" ? `${ROOT}/main.ts` : word));
}

/** What one run printed and how it ended. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno task monitor ARGS` (as a direct `deno run` with the task's flags). */
export async function runMonitor(
  args: string[],
  options: { env?: Record<string, string>; prefix?: string[]; cwd?: string } = {},
): Promise<RunResult> {
  const prefix = options.prefix ?? [];
  const command = prefix.length > 0 ? prefix[0] : Deno.execPath();
  const commandArgs = prefix.length > 0
    ? [...prefix.slice(1), Deno.execPath(), ...monitorArgs(), ...args]
    : [...monitorArgs(), ...args];
  return await runCaptured(command, commandArgs, {
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd ?? ROOT,
  });
}

/** Runs a command with no input and captures how it ended and what it printed. */
export async function runCaptured(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; clearEnv?: boolean; cwd?: string } = {},
): Promise<RunResult> {
  const output = await new Deno.Command(command, {
    args,
    env: options.env,
    clearEnv: options.clearEnv,
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
