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
import { OUTSIDE_TABLES, parseIptablesSave, SaveParser } from "./save_parser.ts";
import type { Family, FamilyRead, ReadError, RulesSource, TableRules } from "./types.ts";

/** The kernel backend a save command reads. */
type Backend = "nf_tables" | "legacy";

/** What one save command gave: tables, nothing (the tool is not installed), or an error. */
type BackendRead =
  | {
    kind: "tables";
    command: string;
    backend: Backend | undefined;
    tables: TableRules[];
    /** What was read is checked, but the read is incomplete: why. */
    incomplete?: ReadError;
  }
  | { kind: "absent" }
  | { kind: "error"; error: ReadError };

/** Dump files larger than this are refused: the same bound as a save command's output. */
export const MAX_RULES_FILE_BYTES = MAX_OUTPUT_BYTES;

/** Why a save that ran past its deadline, or whose output we could not hold, is a finding. */
export const RULESET_TOO_LARGE =
  "a ruleset too large to read: a node user can cause this by adding rules";

/** How a save ended, or the runner's own failure (output too large to hold as one string). */
type SaveOutcome = CommandOutcome | { kind: "failed"; message: string };

/** `run`, with a rejection turned into an outcome, so that no output can end the check. */
function guarded(run: CommandRunner) {
  return (command: string, args: string[], options: Parameters<CommandRunner>[2]) =>
    run(command, args, options).catch((error): SaveOutcome => ({
      kind: "failed",
      message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    }));
}

/**
 * A read that a node user can cause to fail by adding rules: the error it is, and an
 * unexpected line of its backend, so that it makes the verdict "true", never "unknown".
 */
function tooLarge(
  family: Family,
  command: string,
  backend: Backend | undefined,
  message: string,
): BackendRead {
  return {
    kind: "tables",
    command,
    backend,
    tables: [{
      table: OUTSIDE_TABLES,
      rules: [{ chain: "", text: message, unallowable: RULESET_TOO_LARGE }],
    }],
    incomplete: { kind: "iptables", family, source: command, message },
  };
}

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

function backendFromVersion(outcome: SaveOutcome): Backend | undefined {
  if (outcome.kind !== "exited" || outcome.code !== 0) return undefined;
  const text = outcome.stdout + outcome.stderr;
  if (text.includes("(nf_tables)")) return "nf_tables";
  if (text.includes("(legacy)")) return "legacy";
  return undefined;
}

/**
 * Turns one save command's outcome into tables or a one-line error saying what to do;
 * `parser` has parsed what the command printed as it arrived.
 */
function interpret(
  family: Family,
  command: string,
  backend: Backend | undefined,
  outcome: SaveOutcome,
  parser: SaveParser,
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
      // A few hundred thousand rules in one chain, loaded in seconds, take
      // iptables-nft-save minutes (README, "What can make a check unknown").
      return tooLarge(
        family,
        command,
        backend,
        `${command} did not finish within ${seconds(timeoutMs)} and was killed`,
      );
    case "too-large":
      // More output than any real node prints: a node user can cause it by adding rules.
      return tooLarge(
        family,
        command,
        backend,
        `${command} printed more than ${outcome.limitBytes / 1024 / 1024} MiB and was killed`,
      );
    case "failed":
      return tooLarge(
        family,
        command,
        backend,
        `the output of ${command} could not be read (${outcome.message})`,
      );
    case "aborted":
      return error(`${command} was stopped: shutting down`);
    case "exited": {
      if (outcome.signal === "SIGKILL") {
        // The kernel's OOM killer ends a save that outgrows the pod's memory limit, and a
        // node user can make it outgrow it by adding rules (README, "What can make a check
        // unknown"); whoever else sends a save SIGKILL is on the node too.
        return tooLarge(
          family,
          command,
          backend,
          `${command} was killed by SIGKILL (out of memory?) before it finished`,
        );
      }
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
      // Rule text cannot make this fail: a line with no place in the dump is a rule that
      // cannot be allowlisted. Only a dump that stops inside a table is incomplete.
      // A runner that keeps output rather than handing it over (tests) leaves it here.
      if (outcome.stdout !== "") parser.feed(outcome.stdout);
      const parsed = parser.finish();
      const incomplete = parsed.truncated && {
        kind: "iptables" as const,
        family,
        source: command,
        message: `${command} output, line ${parsed.truncated.line}: ${parsed.truncated.message}`,
      };
      return { kind: "tables", command, backend, tables: parsed.tables, incomplete };
    }
  }
}

function kernelLacksBackend(outcome: SaveOutcome): boolean {
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
  options: {
    timeoutMs: number;
    run?: CommandRunner;
    signal?: AbortSignal;
    /**
     * Remember each table for the next read (the daemon's), so that an unchanged one is
     * not parsed again (see save_parser.ts). A one-shot check does not pay for it.
     */
    remember?: boolean;
  },
): Promise<FamilyRead> {
  const given = guarded(options.run ?? runCommand);
  const { timeoutMs, signal } = options;
  const run = (
    command: string,
    args: string[],
    runOptions: { timeoutMs: number; onStdout?: (text: string) => void },
  ) => given(command, args, { ...runOptions, signal });
  /** A save whose output is parsed as it arrives. */
  const save = (command: string) => {
    const parser = new SaveParser({ reuse: options.remember ?? false });
    const outcome = run(command, [], { timeoutMs, onStdout: (text) => parser.feed(text) });
    return outcome.then((outcome) => ({ outcome, parser }));
  };
  const prefix = toolPrefix(family);
  const variants: { command: string; backend: Backend }[] = [
    { command: `${prefix}-nft-save`, backend: "nf_tables" },
    { command: `${prefix}-legacy-save`, backend: "legacy" },
  ];
  const saves = await Promise.all(variants.map((variant) => save(variant.command)));
  const outcomes = saves.map(({ outcome }) => outcome);

  let reads: BackendRead[];
  if (outcomes.every((outcome) => outcome.kind === "not-found")) {
    const plain = `${prefix}-save`;
    const [saved, version] = await Promise.all([
      save(plain),
      run(plain, ["--version"], { timeoutMs }),
    ]);
    reads = [
      interpret(
        family,
        plain,
        backendFromVersion(version),
        saved.outcome,
        saved.parser,
        timeoutMs,
      ),
    ];
  } else {
    reads = variants.map((variant, index) => {
      const outcome = outcomes[index];
      if (outcome.kind === "not-found") return { kind: "absent" };
      const { parser } = saves[index];
      return interpret(family, variant.command, variant.backend, outcome, parser, timeoutMs);
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
    if (read.incomplete !== undefined) errors.push(read.incomplete);
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
  run: ReturnType<typeof guarded>,
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
  if (parsed.tableHeaders === 0) {
    const what = parsed.tables.length === 0
      ? "holds no tables (an empty dump?)"
      : 'is not an iptables-save dump (no "*table" line)';
    return failed(
      `rules file ${path} ${what}; ` +
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
  const errors: ReadError[] = parsed.truncated === undefined ? [] : [{
    kind: "rules-file",
    family,
    source,
    message: `rules file ${path}, line ${parsed.truncated.line}: ${parsed.truncated.message}`,
  }];
  return { family, sources: [{ family, source, tables: parsed.tables }], errors };
}
