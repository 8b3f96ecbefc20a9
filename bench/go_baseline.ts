/**
 * The Go original's algorithm as a baseline (`bench/go_baseline/main.go`): building it
 * with Debian's Go and go-iptables, and running it inside a benchmark namespace.
 *
 * go-iptables comes from Debian (`apt-get install -y golang-github-coreos-go-iptables-dev`,
 * installed here on first use when missing) and is built in GOPATH mode against
 * `/usr/share/gocode`, so no Go module is downloaded.
 *
 * @module
 */
import { z } from "zod";
import { mustRun } from "./measure.ts";

/** Where Debian's golang-github-coreos-go-iptables-dev puts the library. */
export const GOPATH = "/usr/share/gocode";
const GO_IPTABLES_DIR = `${GOPATH}/src/github.com/coreos/go-iptables/iptables`;
const GO_IPTABLES_PACKAGE = "golang-github-coreos-go-iptables-dev";
const SOURCE_DIR = decodeURIComponent(new URL("./go_baseline/", import.meta.url).pathname);

/** The environment the harness is built with: GOPATH mode, nothing downloaded. */
export function goBuildEnv(): Record<string, string> {
  return {
    GOPATH,
    GO111MODULE: "off",
    GOFLAGS: "",
    GOCACHE: Deno.env.get("GOCACHE") ?? "/tmp/aim-bench-gocache",
    PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
  };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's go-iptables when it is missing (needs root and the Debian mirror). */
export async function ensureGoIptables(): Promise<void> {
  if (exists(GO_IPTABLES_DIR)) return;
  const env = { DEBIAN_FRONTEND: "noninteractive", PATH: goBuildEnv().PATH };
  const install = ["apt-get", "install", "-y", "-qq", GO_IPTABLES_PACKAGE];
  try {
    await mustRun(install, { env });
  } catch {
    await mustRun(["apt-get", "update", "-qq"], { env });
    await mustRun(install, { env });
  }
  if (!exists(GO_IPTABLES_DIR)) {
    throw new Error(`${GO_IPTABLES_PACKAGE} is installed but ${GO_IPTABLES_DIR} is missing`);
  }
}

/** The installed go-iptables version (Debian package version). */
export async function goIptablesVersion(): Promise<string> {
  return (await mustRun(["dpkg-query", "-W", "-f=${Version}", GO_IPTABLES_PACKAGE])).trim();
}

/** Builds the harness into `outDir` and returns the binary's path. */
export async function buildGoBaseline(outDir: string): Promise<string> {
  await ensureGoIptables();
  const binary = `${outDir}/go_baseline`;
  await mustRun(["go", "build", "-o", binary, "."], { cwd: SOURCE_DIR, env: goBuildEnv() });
  return binary;
}

const Unexpected = z.object({ table: z.string(), rule: z.string() });

const Check = z.object({
  listMs: z.number(),
  patternsMs: z.number(),
  compileMs: z.number(),
  loopMs: z.number(),
  totalMs: z.number(),
  processes: z.number().int(),
  tables: z.record(
    z.string(),
    z.object({ rules: z.number().int(), chains: z.number().int(), digest: z.string() }),
  ),
  unexpected: z.array(Unexpected),
});

/** What one run of the harness in check mode prints. */
export const GoCheckOutput = z.object({
  iptables: z.string(),
  newMs: z.number(),
  checks: z.array(Check).min(1),
});
export type GoCheckOutput = z.infer<typeof GoCheckOutput>;

/** What the harness prints with `-matchOnly`. */
export const GoMatchOutput = z.object({
  rules: z.number().int(),
  compileMs: z.array(z.number()),
  loopMs: z.array(z.number()),
  unexpected: z.array(Unexpected),
});
export type GoMatchOutput = z.infer<typeof GoMatchOutput>;

/** The harness's arguments for checks in one process. */
export function goCheckArgs(input: string, checks: number): string[] {
  return ["-input", input, "-checks", String(checks)];
}

/** Runs matching alone on the rules in `rulesFile` (JSON lines by table), `reps` times. */
export async function goMatchOnly(
  binary: string,
  input: string,
  rulesFile: string,
  reps: number,
): Promise<GoMatchOutput> {
  const out = await mustRun([binary, "-input", input, "-matchOnly", rulesFile, "-reps", `${reps}`]);
  return GoMatchOutput.parse(JSON.parse(out));
}
