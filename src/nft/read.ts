/**
 * The nft view: what netfilter holds that no `iptables-save` shows, read with `nft -j`.
 *
 * Two steps keep it cheap on a node with thousands of iptables rules (on 5,000
 * kube-proxy services, `nft -j list ruleset` takes seconds and `nft list tables` pulls
 * the whole ruleset too, while `list chains` takes a fraction of the save's time):
 *
 * 1. `nft -j list chains; list flowtables`, run next to the iptables saves: every table
 *    that has a chain or a flowtable (a table with neither hooks nothing, so nothing in
 *    it sees a packet), with every base chain's hook and priority.
 * 2. In full (`nft -j list table F T`), only the tables no iptables view showed: every
 *    table of family inet, arp, bridge and netdev, every ip/ip6 table that is not one of
 *    iptables' own, and iptables' own tables that `iptables-nft-save` left out (marked
 *    incompatible). In the tables it did show, only base chains that differ from
 *    iptables' built-in ones (`nft -j list chain F T C`): iptables-nft-save hides those.
 *
 * Any failure a node user could cause (a listing that fails, times out or prints what
 * the schema does not accept) becomes a line of its own, so it counts as unexpected:
 * the view can be made noisier by the rules, never blind. Only a missing `nft`, one that
 * cannot start, or one without the privilege to read is an error that leaves the check
 * undecided, since no rule can cause those.
 *
 * @module
 */

import type { Config } from "../cli/config.ts";
import type { CommandOutcome, CommandRunner } from "../iptables/runner.ts";
import type { Family, ReadError, Rule } from "../iptables/types.ts";
import { asChain, type Chain, chainLine, isDocument, itemEntry, tableKey } from "./chain.ts";
import type { ObjectLine } from "./objects.ts";
import { type Json, quoted, word } from "./render.ts";
import { iptablesCanName, isStandardChain, isXtablesTable } from "./xtables.ts";

/** The `source` of the nft view in reports. */
export const NFT_SOURCE = "nft";
/** The command. */
export const NFT_COMMAND = "nft";

/** One table of the nft view: its lines, as the check matches them. */
export interface NftTable {
  /** `FAMILY NAME`, e.g. `inet sneaky`. */
  table: string;
  rules: Rule[];
}

/** The nft view of one check, by the family whose allowlist applies. */
export interface NftRead {
  tables: Map<Family, NftTable[]>;
  errors: ReadError[];
}

/** What step 1 found. */
export type NftListing =
  /** `broken`: items that are neither a chain nor a flowtable, read in step 2's way. */
  | { kind: "listed"; chains: Chain[]; flowtables: Json[]; broken: Json[] }
  | { kind: "empty" }
  | { kind: "error"; message: string }
  | { kind: "failed"; message: string };

/** More tables or chains than this to list in full: one `list ruleset` instead. */
const MAX_SEPARATE_LISTINGS = 8;
/** A name nft's command line accepts unquoted (nft 1.0.6's scanner: `string`). */
const COMMAND_NAME = /^[A-Za-z_.][A-Za-z0-9_/.-]*$/;
const PERMISSION_PROBLEM = /permission denied|operation not permitted/i;
/** What nft says when the kernel has no nf_tables: then no nft rule can exist. */
const NO_KERNEL_SUPPORT = /protocol not supported/i;

/**
 * Whether a check also reads the nft view: on by default (`-nftables`), for the live
 * ruleset only (a dump file holds iptables rules alone, so with `-rulesFile` or
 * `-rulesFile6` there is no live ruleset to compare it with).
 */
export function nftViewOn(config: Config): boolean {
  return config.nftables && config.rulesFile === undefined && config.rulesFile6 === undefined;
}

/** The family whose allowlist (`-input` or `-input6`) applies to an nft family. */
export function reportFamily(nftFamily: string): Family {
  return nftFamily === "ip6" ? "ipv6" : "ipv4";
}

function firstLine(text: string): string {
  const line = text.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** Why an outcome is not a listing. */
function failure(outcome: CommandOutcome, timeoutMs: number): string {
  switch (outcome.kind) {
    case "exited":
      return `exited with code ${outcome.code}: ${firstLine(outcome.stderr) || "no error output"}`;
    case "timeout":
      return `did not finish within ${timeoutMs / 1000}s and was killed`;
    case "not-found":
      return "is not installed";
    case "cannot-start":
      return `could not be started (${outcome.message})`;
    case "too-large":
      return `printed more than ${outcome.limitBytes / 1024 / 1024} MiB and was killed`;
    case "aborted":
      return "was stopped: shutting down";
    default:
      return `failed (${JSON.stringify(outcome).slice(0, 200)})`;
  }
}

/** The items a listing printed, or why there are none: `nft -j list chains: <why>`. */
function listed(
  what: string,
  outcome: CommandOutcome,
  timeoutMs: number,
): Json[] | { message: string } {
  if (outcome.kind !== "exited" || outcome.code !== 0) {
    return { message: `nft -j ${what} ${failure(outcome, timeoutMs)}` };
  }
  const items = documentItems(outcome.stdout);
  return typeof items === "string" ? { message: `nft -j ${what}: ${items}` } : items;
}

/** The items of every JSON document in `stdout` (nft prints one per command, one a line). */
function documentItems(stdout: string): Json[] | string {
  const items: Json[] = [];
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return `output is not JSON: ${quoted(firstLine(line).slice(0, 80))}`;
    }
    if (!isDocument(json)) {
      return `output is not an nft JSON document: ${quoted(firstLine(line).slice(0, 80))}`;
    }
    items.push(...json.nftables);
  }
  return items;
}

/** Step 1: every chain and flowtable, with hooks and priorities. */
export async function listChains(
  run: CommandRunner,
  timeoutMs: number,
): Promise<NftListing> {
  const outcome = await run(NFT_COMMAND, ["-j", "list chains; list flowtables"], { timeoutMs });
  if (outcome.kind === "not-found") {
    return {
      kind: "error",
      message: "nft is not installed (not found on PATH), so tables iptables cannot show " +
        "were not checked: install the nftables package, or turn this off with -nftables=false",
    };
  }
  if (outcome.kind === "cannot-start") {
    return {
      kind: "error",
      message: `nft could not be started (${outcome.message}): check that it is executable ` +
        "and that Deno may run it (--allow-run)",
    };
  }
  if (outcome.kind === "exited" && outcome.code !== 0) {
    const said = firstLine(outcome.stderr);
    if (PERMISSION_PROBLEM.test(said)) {
      return {
        kind: "error",
        message: `nft is not permitted to list the ruleset (${said}): ` +
          "run as root or with CAP_NET_ADMIN",
      };
    }
    if (NO_KERNEL_SUPPORT.test(said)) return { kind: "empty" };
  }
  const items = listed("list chains", outcome, timeoutMs);
  if (!Array.isArray(items)) return { kind: "failed", message: items.message };
  const chains: Chain[] = [];
  const flowtables: Json[] = [];
  const broken: Json[] = [];
  for (const item of items) {
    const entry = itemEntry(item);
    if (entry?.[0] === "metainfo") continue;
    if (entry?.[0] === "chain" && isPlainIptablesChain(entry[1])) continue;
    if (entry?.[0] === "chain") {
      const chain = asChain(entry[1]);
      if (chain !== undefined) {
        chains.push(chain);
        continue;
      }
    }
    if (entry?.[0] === "flowtable") {
      flowtables.push(item);
      continue;
    }
    broken.push(item);
  }
  return { kind: "listed", chains, flowtables, broken };
}

/**
 * A regular chain of one of iptables' own tables, told apart without a schema: the
 * thousands of kube-proxy chains of a large node are these. Whether the table was shown
 * is decided later; if it was not, the table is listed in full anyway, chains included.
 */
function isPlainIptablesChain(body: Json): boolean {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return false;
  return typeof body.family === "string" && typeof body.table === "string" &&
    typeof body.name === "string" && isXtablesTable(body.family, body.table) &&
    iptablesCanName(body.name) && Object.keys(body).every((key) => PLAIN_CHAIN_KEYS.has(key));
}

const PLAIN_CHAIN_KEYS = new Set(["family", "table", "name", "handle"]);

/** A table or chain to list in full in step 2. */
type Job =
  | { kind: "table"; family: string; table: string }
  | { kind: "chain"; family: string; table: string; chain: string };

function jobArgs(job: Job): string {
  return job.kind === "table"
    ? `list table ${job.family} ${job.table}`
    : `list chain ${job.family} ${job.table} ${job.chain}`;
}

function nameable(job: Job): boolean {
  return [job.family, job.table, ...(job.kind === "chain" ? [job.chain] : [])].every((name) =>
    COMMAND_NAME.test(name)
  );
}

/**
 * Whether a line of a full listing belongs to what `jobs` asked for: everything of a
 * table, the rules of a chain (its own line came from step 1).
 */
function wanted(jobs: readonly Job[], line: ObjectLine): boolean {
  return jobs.some((job) =>
    tableKey(job.family, job.table) === line.table &&
    (job.kind === "table" || (line.chain === job.chain && line.text.startsWith("add rule ")))
  );
}

/**
 * Step 2 and the verdict lines: lists in full what no iptables view showed. `shown`
 * holds, per family, the iptables tables `iptables-nft-save` printed; a family missing
 * from it had no nf_tables iptables view (not installed, or it failed), so its
 * iptables tables are listed in full as well.
 */
export async function readNftView(
  listing: NftListing,
  options: {
    families: readonly Family[];
    shown: ReadonlyMap<Family, ReadonlySet<string>>;
    run: CommandRunner;
    timeoutMs: number;
  },
): Promise<NftRead> {
  const { families, shown, run, timeoutMs } = options;
  const tables = new Map<Family, Map<string, Rule[]>>(families.map((f) => [f, new Map()]));
  const errors: ReadError[] = [];
  const add = (line: ObjectLine) => {
    const family = reportFamily(line.family);
    const byTable = tables.get(family) ?? (line.family === "?" ? tables.get("ipv4") : undefined);
    if (byTable === undefined) return; // ip6 without -ipv6
    let rules = byTable.get(line.table);
    if (rules === undefined) byTable.set(line.table, rules = []);
    rules.push({ chain: line.chain, text: line.text });
  };
  const result = (): NftRead => ({
    tables: new Map(
      [...tables].map(([family, byTable]) => [
        family,
        [...byTable].map(([table, rules]) => ({ table, rules })),
      ]),
    ),
    errors,
  });

  if (listing.kind === "empty") return result();
  if (listing.kind === "error" || listing.kind === "failed") {
    errors.push({ kind: "nft", family: "ipv4", source: NFT_SOURCE, message: listing.message });
    if (listing.kind === "failed") {
      add({ family: "?", table: "-", chain: "", text: `# ${listing.message}` });
    }
    return result();
  }

  /**
   * Every object but a chain is read with zod (objects.ts), loaded only when a check
   * meets one: a node whose nft holds only iptables' chains never loads it.
   */
  let objects: typeof import("./objects.ts") | undefined;
  const objectLines = async (item: Json) =>
    (objects ??= await import("./objects.ts")).objectLines(item);
  for (const item of listing.broken) (await objectLines(item)).forEach(add);
  const inScope = (family: string) => tables.has(reportFamily(family));
  const jobs: Job[] = [];
  /** Lines step 1 already gives, used when a full listing of their table fails. */
  const known = new Map<string, ObjectLine[]>();
  const remember = (line: ObjectLine) => {
    const list = known.get(line.table) ?? [];
    list.push(line);
    known.set(line.table, list);
  };
  const showsTable = (family: string, table: string) =>
    isXtablesTable(family, table) && (shown.get(reportFamily(family))?.has(table) ?? false);

  const fullTables = new Set<string>();
  for (const chain of listing.chains) {
    if (!inScope(chain.family)) continue;
    const key = tableKey(chain.family, chain.table);
    const line = { family: chain.family, table: key, chain: chain.name, text: chainLine(chain) };
    if (showsTable(chain.family, chain.table)) {
      if (isStandardChain(chain)) continue;
      add(line);
      jobs.push({ kind: "chain", family: chain.family, table: chain.table, chain: chain.name });
      continue;
    }
    if (!fullTables.has(key)) {
      fullTables.add(key);
      jobs.push({ kind: "table", family: chain.family, table: chain.table });
      remember({
        family: chain.family,
        table: key,
        chain: "",
        text: `add table ${key}`,
      });
    }
    remember(line);
  }
  for (const item of listing.flowtables) {
    for (const line of await objectLines(item)) {
      if (!inScope(line.family)) continue;
      if (fullTables.has(line.table)) continue; // listed with its table
      add(line); // a flowtable in a table without chains, or in an iptables table
    }
  }
  if (jobs.length === 0) return result();

  objects ??= await import("./objects.ts");
  const lines = await listInFull(jobs, run, timeoutMs, objects.objectLines);
  if (Array.isArray(lines)) {
    for (const line of lines) if (wanted(jobs, line)) add(line);
    return result();
  }
  // Neither the separate listings nor the whole ruleset could be read: what step 1 saw
  // of these tables, and the failure, each as a line.
  errors.push({ kind: "nft", family: "ipv4", source: NFT_SOURCE, message: lines.message });
  for (const job of jobs) {
    if (job.kind === "table") {
      for (const line of known.get(tableKey(job.family, job.table)) ?? []) add(line);
    }
    add({
      family: job.family,
      table: tableKey(job.family, job.table),
      chain: job.kind === "chain" ? job.chain : "",
      text: `# nft could not list ${job.kind} ${tableKey(job.family, job.table)}${
        job.kind === "chain" ? ` ${word(job.chain)}` : ""
      }: ${lines.message}`,
    });
  }
  return result();
}

/**
 * The lines of every job: one listing per job while they are few and nameable on nft's
 * command line, else (or when one of them fails) the whole ruleset once.
 */
async function listInFull(
  jobs: readonly Job[],
  run: CommandRunner,
  timeoutMs: number,
  objectLines: (item: Json) => ObjectLine[],
): Promise<ObjectLine[] | { message: string }> {
  if (jobs.length <= MAX_SEPARATE_LISTINGS && jobs.every(nameable)) {
    const outcomes = await Promise.all(
      jobs.map((job) => run(NFT_COMMAND, ["-j", jobArgs(job)], { timeoutMs })),
    );
    const listings = outcomes.map((outcome, i) => listed(jobArgs(jobs[i]), outcome, timeoutMs));
    const items = listings.flatMap((listing) => Array.isArray(listing) ? listing : []);
    if (listings.every(Array.isArray)) return items.flatMap(objectLines);
  }
  const items = listed(
    "list ruleset",
    await run(NFT_COMMAND, ["-j", "list ruleset"], { timeoutMs }),
    timeoutMs,
  );
  return Array.isArray(items) ? items.flatMap(objectLines) : items;
}
