/**
 * Reading `xtables-monitor --event`: which lines announce a change, and which process
 * committed each nf_tables transaction (its `NEWGEN` line), kept for attribution hints.
 *
 * @module
 */

import { z } from "zod";
import type { Family } from "../iptables/types.ts";

/** The process that committed one nf_tables transaction, from its `NEWGEN` line. */
export interface Generation {
  genId: number;
  pid: number;
  /** The process's `comm` (at most 15 characters, e.g. `iptables-nft-re`). */
  name: string;
}

/** What one line of `xtables-monitor --event` says. */
export type MonitorLine =
  | { kind: "generation"; generation: Generation }
  /** A rule, chain or table event; `other` is a family iptables-save does not show. */
  | { kind: "event"; family: Family | "other" }
  | { kind: "unknown"; text: string }
  | { kind: "blank" };

const NEWGEN = /^NEWGEN: GENID=(\d+) PID=(\d+) NAME=(.*)$/;
const GenerationFields = z.object({
  genId: z.coerce.number().int().nonnegative(),
  pid: z.coerce.number().int().nonnegative(),
  name: z.string(),
});
/** `-4 -t filter -A ...` (1.8.9) or `iptables -t filter -A ...` (1.8.11 prints commands). */
const RULE_OR_CHAIN = /^-([046]) -t \S/;
const RULE_OR_CHAIN_COMMAND = /^(iptables|ip6tables|arptables|ebtables)(?:-nft)? -t \S/;
/** `nft: NEW table: table filter ip flags 0 use 1 handle 1`. */
const TABLE = /^nft: (?:NEW|DEL) table: table \S+ (\S+)/;
/** A base chain (policy or hook): `# nft: ip filter FORWARD use 0 type filter hook ...`. */
const BASE_CHAIN = /^# nft: (\S+) /;
const EVENT_PREFIX = " EVENT: ";

function familyOfNftName(name: string): Family | "other" {
  if (name === "ip") return "ipv4";
  if (name === "ip6") return "ipv6";
  return "other";
}

function familyOfFlag(flag: string): Family | "other" {
  if (flag === "4" || flag === "iptables") return "ipv4";
  if (flag === "6" || flag === "ip6tables") return "ipv6";
  return "other";
}

/** Classifies one line (without its newline) of `xtables-monitor --event`. */
export function parseMonitorLine(line: string): MonitorLine {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (text.trim() === "") return { kind: "blank" };
  const generation = NEWGEN.exec(text);
  if (generation !== null) {
    const fields = GenerationFields.safeParse({
      genId: generation[1],
      pid: generation[2],
      name: generation[3],
    });
    if (fields.success) return { kind: "generation", generation: fields.data };
    return { kind: "unknown", text };
  }
  if (!text.startsWith(EVENT_PREFIX)) return { kind: "unknown", text };
  const event = text.slice(EVENT_PREFIX.length);
  const flag = RULE_OR_CHAIN.exec(event) ?? RULE_OR_CHAIN_COMMAND.exec(event);
  if (flag !== null) return { kind: "event", family: familyOfFlag(flag[1]) };
  const table = TABLE.exec(event) ?? BASE_CHAIN.exec(event);
  if (table !== null) return { kind: "event", family: familyOfNftName(table[1]) };
  return { kind: "unknown", text };
}

/**
 * Turns the monitor's lines into "re-check" decisions and remembers who changed the
 * ruleset. A line about a scanned family, or one that cannot be classified, is a
 * change; a transaction that touched only other families (ip6tables when only IPv4 is
 * scanned, arptables, nft's own tables) is not. A transaction's events precede its
 * `NEWGEN` line, which names the process and closes it.
 *
 * With `everyChange` (the nft view is on), every transaction is a change: the nft view
 * reads tables of every family, and xtables-monitor prints no event at all for many
 * nft objects (sets, elements, flowtables, rules of native tables print an empty
 * event), only their transaction's `NEWGEN` line.
 */
export class GenerationTracker {
  readonly #families: ReadonlySet<Family>;
  readonly #everyChange: boolean;
  #pendingRelevant = false;
  #seen: Generation[] = [];

  constructor(families: Iterable<Family>, options: { everyChange?: boolean } = {}) {
    this.#families = new Set(families);
    this.#everyChange = options.everyChange ?? false;
  }

  /** Feeds one line; returns true when it announces a change worth a re-check. */
  push(line: MonitorLine): boolean {
    switch (line.kind) {
      case "blank":
        return false;
      case "unknown":
        this.#pendingRelevant = true;
        return true;
      case "event": {
        const relevant = this.#everyChange ||
          (line.family !== "other" && this.#families.has(line.family));
        if (relevant) this.#pendingRelevant = true;
        return relevant;
      }
      case "generation": {
        const relevant = this.#pendingRelevant || this.#everyChange;
        if (relevant) this.#seen.push(line.generation);
        if (this.#seen.length > MAX_REMEMBERED) this.#seen.shift();
        // Already announced by its events, unless only the NEWGEN line told of it.
        const announce = this.#everyChange && !this.#pendingRelevant;
        this.#pendingRelevant = false;
        return announce;
      }
    }
  }

  /**
   * The monitor ended, possibly in the middle of a transaction (it dies at a rule it
   * cannot print). That transaction's events announced it already; the next monitor's
   * first `NEWGEN` closes a new one, and must not be taken for its end.
   */
  endOfStream(): void {
    this.#pendingRelevant = false;
  }

  /** The relevant transactions seen since the previous call, oldest first; forgets them. */
  take(): Generation[] {
    const seen = this.#seen;
    this.#seen = [];
    return seen;
  }
}

/** Transactions remembered for attribution between two checks. */
const MAX_REMEMBERED = 64;
/** Processes named in one hint. */
const HINT_PROCESSES = 3;

/**
 * Names the processes behind `generations` (latest first, each once), e.g.
 * `last ruleset change seen from PID 19934 (iptables)`; undefined when there are none.
 */
export function describeGenerations(generations: readonly Generation[]): string | undefined {
  const distinct: Generation[] = [];
  for (const generation of [...generations].reverse()) {
    const known = distinct.some((g) => g.pid === generation.pid && g.name === generation.name);
    if (!known) distinct.push(generation);
  }
  if (distinct.length === 0) return undefined;
  const named = distinct.slice(0, HINT_PROCESSES).map((g) => `PID ${g.pid} (${g.name})`);
  const more = distinct.length - named.length;
  if (distinct.length === 1) return `last ruleset change seen from ${named[0]}`;
  return `last ruleset changes seen from ${named.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
}
