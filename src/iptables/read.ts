/**
 * Reads the rules of one address family: from every iptables backend that holds tables
 * (one save process per backend, never one per chain), or from a saved dump file.
 * A rule added through one backend is invisible to the other backend's save, so a node
 * that mixes nf_tables and legacy tools must be read through both.
 */
import { readBoundedFile } from "../bounded_file.ts";
import {
  type CommandOutcome,
  type CommandRunner,
  decodeOutput,
  MAX_OUTPUT_BYTES,
  runCommand,
} from "./runner.ts";
import { parseIptablesSave } from "./save_parser.ts";
import type { Family, FamilyRead, ReadError, RulesSource, TableRules } from "./types.ts";

/** The kernel backend a save command reads. */
type Backend = "nf_tables" | "legacy";

/** What one save command gave: tables, nothing (the tool is not installed), or an error. */
type BackendRead =
  | { kind: "tables"; command: string; backend: Backend | undefined; tables: TableRules[] }
  | { kind: "absent" }
  | { kind: "error"; error: ReadError };

/** Dump files larger than this are refused: the same bound as a save command's output. */
export const MAX_RULES_FILE_BYTES = MAX_OUTPUT_BYTES;

const PERMISSION_PROBLEM = /permission denied|you must be root|operation not permitted/i;
/** What iptables-nft prints when the kernel has no nf_tables: no rules can live there. */
const NO_KERNEL_SUPPORT = /failed to initialize nft|protocol not supported/i;

function toolPrefix(family: Family): string {
  return family === "ipv4" ? "iptables" : "ip6tables";
}

function rulesFileFlag(family: Family): string {
  return family === "ipv4" ? "-rulesFile" : "-rulesFile6";
}

function sourceName(command: string, backend: Backend | undefined): string {
  return backend === undefined ? command : `${command} (${backend})`;
}

function firstLine(text: string): string {
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed !== "") return trimmed.length > 200 ? `${trimmed.slice(0, 200)}...` : trimmed;
  }
  return "";
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

function backendFromVersion(outcome: CommandOutcome): Backend | undefined {
  if (outcome.kind !== "exited" || outcome.code !== 0) return undefined;
  const text = outcome.stdout + outcome.stderr;
  if (text.includes("(nf_tables)")) return "nf_tables";
  if (text.includes("(legacy)")) return "legacy";
  return undefined;
}

/** Turns one save command's outcome into tables or a one-line error saying what to do. */
function interpret(
  family: Family,
  command: string,
  backend: Backend | undefined,
  outcome: CommandOutcome,
  timeoutMs: number,
): BackendRead {
  const error = (message: string): BackendRead => ({
    kind: "error",
    error: { kind: "iptables", family, source: command, message },
  });
  switch (outcome.kind) {
    case "not-found":
      return error(
        `${command} is not installed (not found on PATH): install the iptables package, ` +
          `or audit a saved dump with ${rulesFileFlag(family)}`,
      );
    case "cannot-start":
      return error(`${command} is on PATH but could not be run: ${outcome.message}`);
    case "timeout":
      return error(`${command} did not finish within ${seconds(timeoutMs)} and was killed`);
    case "too-large":
      return error(
        `${command} printed more than ${outcome.limitBytes / 1024 / 1024} MiB and was killed; ` +
          "no real ruleset is that large",
      );
    case "aborted":
      return error(`${command} was stopped: shutting down`);
    case "exited": {
      if (outcome.signal !== null) {
        const said = firstLine(outcome.stderr);
        return error(
          `${command} was killed by ${outcome.signal}` + (said === "" ? "" : `: ${said}`),
        );
      }
      if (outcome.code !== 0) {
        const said = firstLine(outcome.stderr);
        if (PERMISSION_PROBLEM.test(said)) {
          return error(
            `${command} is not permitted to read the rules (${said}): ` +
              `run as root or with CAP_NET_ADMIN`,
          );
        }
        return error(
          `${command} exited with code ${outcome.code}: ${said === "" ? "no error output" : said}`,
        );
      }
      const parsed = parseIptablesSave(outcome.stdout);
      if (!parsed.ok) {
        return error(`${command} output, line ${parsed.line}: ${parsed.message}`);
      }
      return { kind: "tables", command, backend, tables: parsed.tables };
    }
  }
}

function kernelLacksBackend(outcome: CommandOutcome): boolean {
  return outcome.kind === "exited" && outcome.code !== 0 &&
    NO_KERNEL_SUPPORT.test(outcome.stderr);
}

/**
 * Reads `family` through every installed backend save command (`iptables-nft-save`,
 * `iptables-legacy-save`, or plain `iptables-save` where neither variant exists), all at
 * once, each within `timeoutMs`. Each backend with tables is its own source; a failed
 * backend is an error, never an empty ruleset.
 */
export async function readFamily(
  family: Family,
  options: { timeoutMs: number; run?: CommandRunner; signal?: AbortSignal },
): Promise<FamilyRead> {
  const given = options.run ?? runCommand;
  const { timeoutMs, signal } = options;
  const run: CommandRunner = (command, args, runOptions) =>
    given(command, args, { ...runOptions, signal });
  const prefix = toolPrefix(family);
  const variants: { command: string; backend: Backend }[] = [
    { command: `${prefix}-nft-save`, backend: "nf_tables" },
    { command: `${prefix}-legacy-save`, backend: "legacy" },
  ];
  const outcomes = await Promise.all(
    variants.map((variant) => run(variant.command, [], { timeoutMs })),
  );

  let reads: BackendRead[];
  if (outcomes.every((outcome) => outcome.kind === "not-found")) {
    const plain = `${prefix}-save`;
    const [save, version] = await Promise.all([
      run(plain, [], { timeoutMs }),
      run(plain, ["--version"], { timeoutMs }),
    ]);
    reads = [interpret(family, plain, backendFromVersion(version), save, timeoutMs)];
  } else {
    reads = variants.map((variant, index) => {
      const outcome = outcomes[index];
      if (outcome.kind === "not-found") return { kind: "absent" };
      return interpret(family, variant.command, variant.backend, outcome, timeoutMs);
    });
    // A kernel without nf_tables holds no nf_tables rules; that is not a failure as long
    // as another backend could be read.
    const anotherWorked = reads.some((read) => read.kind === "tables");
    reads = reads.map((read, index) =>
      read.kind === "error" && anotherWorked && kernelLacksBackend(outcomes[index])
        ? { kind: "absent" }
        : read
    );
  }

  const sources: RulesSource[] = [];
  const errors: ReadError[] = [];
  const empty: { command: string; backend: Backend | undefined }[] = [];
  for (const read of reads) {
    if (read.kind === "error") errors.push(read.error);
    if (read.kind !== "tables") continue;
    if (read.tables.length === 0) {
      empty.push({ command: read.command, backend: read.backend });
      continue;
    }
    sources.push({ family, source: sourceName(read.command, read.backend), tables: read.tables });
  }

  if (sources.length === 0 && errors.length === 0 && empty.length > 0) {
    const chosen = empty.length === 1
      ? empty[0]
      : await defaultBackend(prefix, empty, run, timeoutMs);
    sources.push({ family, source: sourceName(chosen.command, chosen.backend), tables: [] });
  }
  return { family, sources, errors };
}

/** Picks the backend plain `iptables-save` uses, for reporting a family with no tables. */
async function defaultBackend(
  prefix: string,
  candidates: { command: string; backend: Backend | undefined }[],
  run: CommandRunner,
  timeoutMs: number,
): Promise<{ command: string; backend: Backend | undefined }> {
  const version = await run(`${prefix}-save`, ["--version"], { timeoutMs });
  const backend = backendFromVersion(version) ?? "nf_tables";
  return candidates.find((candidate) => candidate.backend === backend) ?? candidates[0];
}

/** Which family's tool wrote a dump, from its `# Generated by ...` header, if it has one. */
function generatorFamily(text: string): Family | undefined {
  const marker = "# Generated by ";
  const at = text.indexOf(marker);
  if (at === -1 || at > 4096) return undefined;
  const tool = text.slice(at + marker.length, at + marker.length + 10);
  if (tool.startsWith("ip6tables")) return "ipv6";
  if (tool.startsWith("iptables")) return "ipv4";
  return undefined;
}

/**
 * Reads a saved `iptables-save` dump for `-rulesFile`/`-rulesFile6`: a regular file, or a
 * pipe this process was handed, such as `<(ssh node iptables-save)`; a named FIFO, a
 * socket or a device is refused (it could make us wait or read forever). An empty,
 * binary, truncated, oversized or
 * otherwise unusable file is an error: auditing it would wrongly report a clean node.
 */
export async function readRulesFile(path: string, family: Family): Promise<FamilyRead> {
  const source = `file ${path}`;
  const failed = (message: string): FamilyRead => ({
    family,
    sources: [],
    errors: [{ kind: "rules-file", family, source, message }],
  });

  const read = await readBoundedFile(path, {
    maxBytes: MAX_RULES_FILE_BYTES,
    allowInheritedPipe: true,
  });
  const flag = rulesFileFlag(family);
  switch (read.kind) {
    case "missing":
      return failed(`rules file ${path} does not exist`);
    case "too-big":
      return failed(
        `rules file ${path} is larger than ${MAX_RULES_FILE_BYTES / 1024 / 1024} MiB; ` +
          `that is not an iptables-save dump of a real node, so it is refused`,
      );
    case "refused":
      return failed(`rules file ${path} ${read.reason}`);
  }
  const bytes = read.bytes;
  if (bytes.indexOf(0) !== -1) {
    return failed(`rules file ${path} is a binary file, not an iptables-save dump`);
  }
  const text = decodeOutput(bytes);
  const parsed = parseIptablesSave(text);
  if (!parsed.ok) {
    return failed(`rules file ${path}, line ${parsed.line}: ${parsed.message}`);
  }
  if (parsed.tables.length === 0) {
    return failed(
      `rules file ${path} holds no tables (an empty dump?); ` +
        `save one as root with ${toolPrefix(family)}-save > FILE and pass it with ${flag}`,
    );
  }
  const writtenFor = generatorFamily(text);
  if (writtenFor !== undefined && writtenFor !== family) {
    return failed(
      `rules file ${path} was written by ${toolPrefix(writtenFor)}-save; ` +
        `pass it with ${rulesFileFlag(writtenFor)}`,
    );
  }
  return { family, sources: [{ family, source, tables: parsed.tables }], errors: [] };
}
