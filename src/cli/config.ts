/**
 * This program's command line: the flag table (the Go original's flags with their
 * defaults, klog's common flags, and the new ones of DESIGN.md) and the validated
 * configuration the rest of the program runs on.
 */

import { type FlagSpec, type FlagValues, goQuote, parseFlags } from "./go_flags.ts";
import { formatUsage } from "./usage.ts";

/** The program's version, printed by `-version`; kept in step with deno.json by hand. */
export const VERSION = "0.1.0";

/** The name in the usage text and the version line. */
export const PROGRAM_NAME = "azure-iptables-monitor";

/**
 * The longest interval a timer can wait for: Deno's timers hold at most 2^31-1 ms and
 * fire at once beyond that, which would turn the daemon into a busy loop.
 */
export const MAX_INTERVAL_SECONDS = 2_147_483;

const KLOG_IGNORED = "Accepted for klog compatibility; ignored: logs always go to standard error";

/** Every flag the program accepts, with its default and usage text. */
export const FLAGS = [
  // The Go original's flags, with its defaults.
  {
    name: "input",
    kind: "string",
    default: "/etc/config/",
    usage: "Read the IPv4 allowlists from this `directory`: files named global, nat, mangle, " +
      "filter, raw and security, one regular expression (Go syntax) a line",
  },
  {
    name: "input6",
    kind: "string",
    default: "/etc/config6/",
    usage: "Read the IPv6 allowlists (with -ipv6) from this `directory`, the same files as -input",
  },
  {
    name: "interval",
    kind: "int",
    default: 300n,
    usage: "How often to check for user iptables rules and BPF map increases, in `seconds`",
  },
  {
    name: "events",
    kind: "bool",
    default: false,
    usage: "Send a Warning event on the Node when unexpected iptables rules are found " +
      "or the BPF map counts blocked iptables writes",
  },
  {
    name: "ipv6",
    kind: "bool",
    default: false,
    usage: "Also check the ip6tables rules, against the allowlists in -input6",
  },
  {
    name: "checkMap",
    kind: "bool",
    default: false,
    usage: "Check the pinned BPF map at -mapPath for blocked iptables writes at every check",
  },
  {
    name: "mapPath",
    kind: "string",
    default: "/block-iptables/iptables_block_event_counter",
    usage: "Count blocked iptables writes (with -checkMap) in the pinned BPF map at this `path`",
  },
  {
    name: "terminateOnSuccess",
    kind: "bool",
    default: false,
    usage: "Exit (code 0) as soon as a check finds no user iptables rules",
  },
  {
    name: "installRoutesForHealthProbeReply",
    kind: "bool",
    default: false,
    usage: "Before the first check, install loopback routes for the replies to kubelet health " +
      "probes (169.254.7.127, and fd16:9254:7127:1337:ffff:ffff:ffff:ffff with -ipv6)",
  },
  // klog's common flags: accepted so that existing manifests keep working.
  {
    name: "v",
    kind: "int",
    default: 0n,
    usage: "Log verbosity `level`: 2 adds details of every check, 3 adds a MATCHED line " +
      "for every rule with the pattern that matched it",
  },
  {
    name: "skip_headers",
    kind: "bool",
    default: false,
    usage: "Log messages without the klog header (severity, time, pid, file:line)",
  },
  {
    name: "add_dir_header",
    kind: "bool",
    default: false,
    usage: "Show the source file's directory in the klog header, not only its name",
  },
  { name: "logtostderr", kind: "bool", default: true, usage: KLOG_IGNORED },
  { name: "alsologtostderr", kind: "bool", default: false, usage: KLOG_IGNORED },
  { name: "stderrthreshold", kind: "string", default: "2", usage: KLOG_IGNORED },
  { name: "log_dir", kind: "string", default: "", usage: KLOG_IGNORED },
  { name: "log_file", kind: "string", default: "", usage: KLOG_IGNORED },
  { name: "log_file_max_size", kind: "uint", default: 1800n, usage: KLOG_IGNORED },
  { name: "skip_log_headers", kind: "bool", default: false, usage: KLOG_IGNORED },
  { name: "one_output", kind: "bool", default: false, usage: KLOG_IGNORED },
  {
    name: "vmodule",
    kind: "string",
    default: "",
    usage: "Accepted for klog compatibility; ignored: per-file verbosity is not supported",
  },
  {
    name: "log_backtrace_at",
    kind: "string",
    default: "",
    usage: "Accepted for klog compatibility; ignored",
  },
  // New flags.
  {
    name: "once",
    kind: "bool",
    default: false,
    usage: "Check once, print a report on stdout and exit: 0 = all rules expected, " +
      "1 = unexpected rules found, 2 = usage or operational error",
  },
  {
    name: "dryRun",
    kind: "bool",
    default: false,
    usage: "Make no Kubernetes calls (no label, no events); NODE_NAME is not needed",
  },
  {
    name: "rulesFile",
    kind: "string",
    default: "",
    usage: "Read the IPv4 rules from this iptables-save dump `file` instead of running " +
      "iptables-save",
  },
  {
    name: "rulesFile6",
    kind: "string",
    default: "",
    usage: "Read the IPv6 rules from this ip6tables-save dump `file` instead of running " +
      "ip6tables-save (needs -ipv6)",
  },
  {
    name: "output",
    kind: "string",
    default: "text",
    usage: "Print the -once report on stdout in this `format`: text or json (logs go to stderr)",
  },
  {
    name: "kubeconfig",
    kind: "string",
    default: "",
    usage: "Use this kubeconfig `file` to run outside the cluster (else $KUBECONFIG, else the " +
      "in-cluster service account)",
  },
  {
    name: "metricsAddress",
    kind: "string",
    default: "",
    usage: "Serve Prometheus metrics and /healthz on this `address` (host:port, e.g. :9090); " +
      "empty = off",
  },
  {
    name: "watch",
    kind: "bool",
    default: false,
    usage: "Also re-check within seconds of an nf_tables ruleset change, not only every " +
      "-interval",
  },
  {
    name: "nftables",
    kind: "bool",
    default: true,
    usage: "Also check, with nft, what iptables cannot show (native nftables tables of every " +
      "family, hidden base chains, incompatible tables) against the nftables allowlist file; " +
      "-nftables=false checks iptables only, as the Go original does",
  },
  { name: "version", kind: "bool", default: false, usage: "Print the version and exit" },
] as const satisfies readonly FlagSpec[];

/** The parsed flag values, one property per flag. */
export type FlagSettings = FlagValues<typeof FLAGS>;

/** The report formats of `-output`. */
export const OUTPUT_FORMATS = ["text", "json"] as const;

/** Everything the program needs to know from its command line and environment. */
export interface Config {
  readonly input: string;
  readonly input6: string;
  /** Seconds between checks, 1 to {@linkcode MAX_INTERVAL_SECONDS}. */
  readonly interval: number;
  readonly events: boolean;
  readonly ipv6: boolean;
  readonly checkMap: boolean;
  readonly mapPath: string;
  /** klog's `-v`: messages of a higher level are not logged. */
  readonly verbosity: number;
  readonly once: boolean;
  readonly dryRun: boolean;
  readonly rulesFile?: string;
  /** Only with `ipv6`. */
  readonly rulesFile6?: string;
  readonly output: "text" | "json";
  /** `-kubeconfig`, else `KUBECONFIG`; unset means in-cluster. */
  readonly kubeconfig?: string;
  /** `NODE_NAME`; always set unless `dryRun`. */
  readonly nodeName?: string;
  readonly terminateOnSuccess: boolean;
  readonly installRoutesForHealthProbeReply: boolean;
  /** `host:port` to serve metrics on; unset means off. */
  readonly metricsAddress?: string;
  readonly watch: boolean;
  /** Check the nft view (src/nft/) too. */
  readonly nftables: boolean;
  readonly skipHeaders: boolean;
  readonly addDirHeader: boolean;
}

/** The range of `-v`, a Go int32. */
export const INT32_MIN = -(2 ** 31);
export const INT32_MAX = 2 ** 31 - 1;
const HOST_PORT = /^(.*):(\d{1,5})$/;

/** Whether `address` is `host:port` with a port Go's net package accepts. */
export function isHostPort(address: string): boolean {
  const match = HOST_PORT.exec(address);
  return match !== null && Number(match[2]) <= 65535;
}

/** What to do after reading the command line: run, or print and exit. */
export type CommandLine =
  | { readonly kind: "run"; readonly config: Config }
  | {
    readonly kind: "exit";
    readonly code: 0 | 2;
    readonly stdout: string;
    readonly stderr: string;
  };

/** The usage text `-help` prints, in Go's format. */
export function usageText(): string {
  return formatUsage(PROGRAM_NAME, FLAGS);
}

/**
 * Reads the command line (without the program name) and the environment the way the
 * Go binary would, then validates the combination. Help and version exit 0; every
 * error exits 2 with one line saying what is wrong, followed by the usage, on stderr.
 */
export function parseCommandLine(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CommandLine {
  const parsed = parseFlags(FLAGS, args);
  switch (parsed.kind) {
    case "help":
      return { kind: "exit", code: 0, stdout: "", stderr: usageText() };
    case "error":
      return usageError(parsed.message);
  }
  const flags = parsed.values;
  if (flags.version) {
    return { kind: "exit", code: 0, stdout: `${PROGRAM_NAME} ${VERSION}\n`, stderr: "" };
  }
  // Each flag is checked where it is read, with its own message; the tests hold every
  // Config this builds to the zod contract in config_schema.ts.
  const built = buildConfig(flags, parsed.rest, env);
  if (typeof built === "string") return usageError(built);
  return { kind: "run", config: built };
}

function usageError(message: string): CommandLine {
  return { kind: "exit", code: 2, stdout: "", stderr: `${message}\n${usageText()}` };
}

/** The Config for these flags and environment, or the one line that says what is wrong. */
function buildConfig(
  flags: FlagSettings,
  rest: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Config | string {
  if (rest.length > 0) {
    return `unexpected argument ${goQuote(rest[0])}: flags must come before arguments`;
  }
  if (flags.interval < 1n) {
    return `invalid value for -interval: ${flags.interval} ` +
      "(must be a whole number of seconds, at least 1)";
  }
  if (flags.interval > BigInt(MAX_INTERVAL_SECONDS)) {
    return `invalid value for -interval: ${flags.interval} ` +
      `(must be a whole number of seconds, at most ${MAX_INTERVAL_SECONDS}, about 24 days)`;
  }
  if (flags.v < BigInt(INT32_MIN) || flags.v > BigInt(INT32_MAX)) {
    return `invalid value for -v: ${flags.v} (must be a log level from 0 to ${INT32_MAX})`;
  }
  const output = OUTPUT_FORMATS.find((format) => format === flags.output);
  if (output === undefined) {
    return `invalid value for -output: ${goQuote(flags.output)} (must be text or json)`;
  }
  const rulesFile6 = nonEmpty(flags.rulesFile6);
  if (rulesFile6 !== undefined && !flags.ipv6) {
    return `-rulesFile6 needs -ipv6: add -ipv6 to check the IPv6 rules in ${goQuote(rulesFile6)}`;
  }
  const metricsAddress = nonEmpty(flags.metricsAddress);
  if (metricsAddress !== undefined && !isHostPort(metricsAddress)) {
    return `invalid value for -metricsAddress: ${goQuote(metricsAddress)} ` +
      "(must be host:port, e.g. :9090 or 127.0.0.1:9090)";
  }
  const nodeName = nonEmpty(env["NODE_NAME"]);
  const badName = nodeName === undefined ? undefined : nodeNameProblem(nodeName);
  if (badName !== undefined) {
    return `NODE_NAME=${goQuote(nodeName!)} is not a valid node name: ${badName}; set it to ` +
      "this node's name (a DaemonSet passes spec.nodeName)";
  }
  if (nodeName === undefined && !flags.dryRun) {
    return "NODE_NAME is not set: set it to this node's name (a DaemonSet passes " +
      "spec.nodeName), or add -dryRun to check without Kubernetes";
  }
  return {
    input: flags.input,
    input6: flags.input6,
    interval: Number(flags.interval),
    events: flags.events,
    ipv6: flags.ipv6,
    checkMap: flags.checkMap,
    mapPath: flags.mapPath,
    verbosity: Number(flags.v),
    once: flags.once,
    dryRun: flags.dryRun,
    rulesFile: nonEmpty(flags.rulesFile),
    rulesFile6,
    output,
    kubeconfig: nonEmpty(flags.kubeconfig) ?? nonEmpty(env["KUBECONFIG"]),
    nodeName,
    terminateOnSuccess: flags.terminateOnSuccess,
    installRoutesForHealthProbeReply: flags.installRoutesForHealthProbeReply,
    metricsAddress,
    watch: flags.watch,
    nftables: flags.nftables,
    skipHeaders: flags.skip_headers,
    addDirHeader: flags.add_dir_header,
  };
}

/** The longest Kubernetes object name (a DNS-1123 subdomain). */
export const MAX_NODE_NAME_LENGTH = 253;

const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Why `name` cannot be a Node's name, if it cannot: Kubernetes names are DNS-1123
 * subdomains. Checked because the name goes into API paths (`..` would be normalised
 * into another URL) and into log lines (a newline would forge one).
 */
export function nodeNameProblem(name: string): string | undefined {
  if (name.length > MAX_NODE_NAME_LENGTH) {
    return `it has ${name.length} characters, at most ${MAX_NODE_NAME_LENGTH} are allowed`;
  }
  if (!DNS_1123_SUBDOMAIN.test(name)) {
    return "a Kubernetes object name is lower-case letters, digits, '-' and '.', " +
      "starting and ending with a letter or digit (a DNS-1123 subdomain)";
  }
  return undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
