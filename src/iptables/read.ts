/**
 * Reads the rules of one address family: from every iptables backend that holds tables
 * (one save process per backend, never one per chain), or from a saved dump file.
 * A rule added through one backend is invisible to the other backend's save, so a node
 * that mixes nf_tables and legacy tools must be read through both.
 */
import { type CommandOutcome, type CommandRunner, runCommand } from "./runner.ts";
import { parseIptablesSave } from "./save_parser.ts";
import { decodeGoUtf8 } from "../patterns/go_utf8.ts";
import type { Family, FamilyRead, ReadError, RulesSource, TableRules } from "./types.ts";

/** The kernel backend a save command reads. */
type Backend = "nf_tables" | "legacy";

/** What one save command gave: tables, nothing (the tool is not installed), or an error. */
type BackendRead =
  | { kind: "tables"; command: string; backend: Backend | undefined; tables: TableRules[] }
  | { kind: "absent" }
  | { kind: "error"; error: ReadError };

/** Dump files larger than this are refused: no real ruleset comes near it. */
export const MAX_RULES_FILE_BYTES = 256 * 1024 * 1024;

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
    case "denied":
      return error(
        `${command} could not be started (${outcome.message}): check that it is executable ` +
          `and that Deno may run it (--allow-run)`,
      );
    case "timeout":
      return error(`${command} did not finish within ${seconds(timeoutMs)} and was killed`);
    case "exited": {
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
  options: { timeoutMs: number; run?: CommandRunner },
): Promise<FamilyRead> {
  const run = options.run ?? runCommand;
  const { timeoutMs } = options;
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

/** Reads at most `limit + 1` bytes, so an endless pipe or huge file cannot exhaust memory. */
async function readCapped(file: Deno.FsFile, limit: number): Promise<Uint8Array | "too-big"> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = file.readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      return "too-big";
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
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

function openErrorMessage(path: string, error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return `rules file ${path} does not exist`;
  if (error instanceof Deno.errors.PermissionDenied) {
    return `cannot read rules file ${path}: permission denied; make it readable or run as root`;
  }
  if (error instanceof Deno.errors.NotCapable) {
    return `cannot read rules file ${path}: Deno may not read it (--allow-read)`;
  }
  return `cannot read rules file ${path}: ${error instanceof Error ? error.message : error}`;
}

/**
 * Reads a saved `iptables-save` dump for `-rulesFile`/`-rulesFile6` (a regular file or a
 * pipe such as `<(ssh node iptables-save)`). An empty, binary, truncated, oversized or
 * otherwise unusable file is an error: auditing it would wrongly report a clean node.
 */
export async function readRulesFile(path: string, family: Family): Promise<FamilyRead> {
  const source = `file ${path}`;
  const failed = (message: string): FamilyRead => ({
    family,
    sources: [],
    errors: [{ kind: "rules-file", family, source, message }],
  });

  let bytes: Uint8Array | "too-big";
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
    const info = await file.stat();
    if (info.isDirectory) {
      return failed(`rules file ${path} is a directory, not an iptables-save dump`);
    }
    if (info.isFile && info.size > MAX_RULES_FILE_BYTES) bytes = "too-big";
    else bytes = await readCapped(file, MAX_RULES_FILE_BYTES);
  } catch (error) {
    return failed(openErrorMessage(path, error));
  } finally {
    try {
      file?.close();
    } catch {
      // Already closed by the finished stream.
    }
  }

  const flag = rulesFileFlag(family);
  if (bytes === "too-big") {
    return failed(
      `rules file ${path} is larger than ${MAX_RULES_FILE_BYTES / 1024 / 1024} MiB; ` +
        `that is not an iptables-save dump of a real node, so it is refused`,
    );
  }
  if (bytes.indexOf(0) !== -1) {
    return failed(`rules file ${path} is a binary file, not an iptables-save dump`);
  }
  const text = decodeGoUtf8(bytes); // each invalid byte one U+FFFD, as Go's regexp sees it
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
