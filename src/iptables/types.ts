/** The address families the monitor scans. */
export type Family = "ipv4" | "ipv6";

/** The iptables tables the monitor reads, in the order it reports them. */
export const TABLES = ["nat", "mangle", "filter", "raw", "security"] as const;

/** One of the iptables tables named in {@linkcode TABLES}. */
export type TableName = typeof TABLES[number];

/** The chains each table is born with: the only ones with a policy (`-P`). */
export const BUILTIN_CHAINS: Readonly<Record<TableName, readonly string[]>> = {
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  raw: ["PREROUTING", "OUTPUT"],
  security: ["INPUT", "FORWARD", "OUTPUT"],
};

/**
 * One rule line as `iptables -t TABLE -S` prints it: `-P CHAIN POLICY`, `-N CHAIN`
 * or `-A CHAIN ...`. Allowlists were written against exactly these lines.
 */
export interface Rule {
  /** The chain the line belongs to. */
  chain: string;
  /** The whole line, never containing a newline. */
  text: string;
  /**
   * Set when no allowlist may accept this line, whatever its text: why (part of a rule
   * printed over several lines, a line with no place in the dump's structure, ...).
   */
  unallowable?: string;
}

/** The rules of one table, in dump order. */
export interface TableRules {
  table: string;
  rules: Rule[];
}

/** What one iptables backend of one family holds, e.g. `iptables-save (nf_tables)`. */
export interface RulesSource {
  family: Family;
  /** Human-readable origin: `iptables-save (nf_tables)`, `iptables-legacy-save`, `file /x`. */
  source: string;
  tables: TableRules[];
}

/** Something that could not be read; a failed read is never treated as "no rules". */
export interface ReadError {
  /** `nft`: the nft view of what iptables cannot show (src/nft/). */
  kind: "iptables" | "rules-file" | "nft";
  family: Family;
  /** The command or file that failed. */
  source: string;
  message: string;
}

/** The outcome of reading one family: every backend that has tables, or errors. */
export interface FamilyRead {
  family: Family;
  sources: RulesSource[];
  errors: ReadError[];
}
