/**
 * The monitor's metrics in the Prometheus text exposition format (version 0.0.4): what the
 * last check found, how checks and API requests went, and the BPF block counter. A small
 * registry of its own, because the format is simple and a client library would be the
 * largest dependency of the node agent.
 *
 * @module
 */

import type { CheckError, CheckReport, Verdict } from "./check.ts";
import { VERSION } from "./cli/config.ts";

/** The media type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Every metric name starts with this. */
export const METRIC_PREFIX = "azure_iptables_monitor_";

type MetricType = "gauge" | "counter";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The verdicts a check can reach; each gets a series of the verdict gauge. */
const VERDICTS = ["true", "false", "unknown"] as const satisfies readonly Verdict[];

/** The kinds of check errors, so that every counter series exists from the start. */
const CHECK_ERROR_KINDS = [
  "pattern",
  "allowlist",
  "iptables",
  "rules-file",
  "nft",
] as const satisfies readonly CheckError["kind"][];

// Checked by the compiler: the lists above name every verdict and every error kind.
type Exhaustive<List, Union> = [Union] extends [List] ? true : false;
const allVerdicts: Exhaustive<(typeof VERDICTS)[number], Verdict> = true;
const allErrorKinds: Exhaustive<(typeof CHECK_ERROR_KINDS)[number], CheckError["kind"]> = true;
void allVerdicts;
void allErrorKinds;

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** One metric: its name, type, help text and a value per label combination. */
class MetricFamily {
  readonly #samples = new Map<string, { labels: readonly string[]; value: number }>();

  constructor(
    readonly name: string,
    readonly type: MetricType,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new Error(`invalid label name ${label} of ${name}`);
      }
    }
  }

  #key(labels: readonly string[]): string {
    if (labels.length !== this.labelNames.length) {
      throw new Error(`${this.name} takes the labels ${this.labelNames.join(", ")}`);
    }
    return JSON.stringify(labels);
  }

  set(labels: readonly string[], value: number): void {
    this.#samples.set(this.#key(labels), { labels: [...labels], value });
  }

  add(labels: readonly string[], delta: number): void {
    const key = this.#key(labels);
    const current = this.#samples.get(key)?.value ?? 0;
    this.#samples.set(key, { labels: [...labels], value: current + delta });
  }

  clear(): void {
    this.#samples.clear();
  }

  render(): string {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    const samples = [...this.#samples.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [, { labels, value }] of samples) {
      const pairs = labels.map((value, i) => `${this.labelNames[i]}="${escapeLabelValue(value)}"`);
      const series = pairs.length > 0 ? `${this.name}{${pairs.join(",")}}` : this.name;
      lines.push(`${series} ${formatValue(value)}`);
    }
    return lines.join("\n") + "\n";
  }
}

/**
 * What the daemon reports as metrics. The daemon calls the `record`/`set` methods as
 * things happen; the metrics server renders the current state at every scrape.
 */
export class Metrics {
  readonly #families: MetricFamily[] = [];
  readonly #rules: MetricFamily;
  readonly #unexpected: MetricFamily;
  readonly #verdict: MetricFamily;
  readonly #lastCheck: MetricFamily;
  readonly #duration: MetricFamily;
  readonly #checks: MetricFamily;
  readonly #errors: MetricFamily;
  readonly #api: MetricFamily;
  readonly #bpf: MetricFamily;
  #lastCheckAt: Date | undefined;

  constructor(options: { version?: string } = {}) {
    const family = (name: string, type: MetricType, help: string, labels: string[] = []) => {
      const created = new MetricFamily(METRIC_PREFIX + name, type, help, labels);
      this.#families.push(created);
      return created;
    };
    const where = ["family", "source", "table"];
    family("build_info", "gauge", "Always 1; the version label says which build runs.", [
      "version",
    ]).set([options.version ?? VERSION], 1);
    this.#rules = family(
      "rules",
      "gauge",
      "Rule lines (-P, -N and -A) checked in each table by the last check.",
      where,
    );
    this.#unexpected = family(
      "unexpected_rules",
      "gauge",
      "Rules no allowlist pattern matched, per table, in the last check.",
      where,
    );
    this.#verdict = family(
      "verdict",
      "gauge",
      "1 for the verdict of the last check (true: user rules found; false: none; unknown: " +
        "nothing unexpected but something could not be read), 0 for the others.",
      ["verdict"],
    );
    this.#lastCheck = family(
      "last_check_timestamp_seconds",
      "gauge",
      "When the last check completed, in seconds since the Unix epoch.",
    );
    this.#duration = family(
      "last_check_duration_seconds",
      "gauge",
      "How long the last check took, reading and matching, in seconds.",
    );
    this.#checks = family("checks_total", "counter", "Checks completed since start.");
    this.#errors = family(
      "check_errors_total",
      "counter",
      "Problems met by checks, by kind: pattern (invalid allowlist pattern), allowlist " +
        "(unreadable allowlist), iptables (a save command failed), rules-file.",
      ["kind"],
    );
    this.#api = family(
      "api_requests_total",
      "counter",
      "Kubernetes API requests, by verb, resource and result.",
      ["verb", "resource", "result"],
    );
    this.#bpf = family(
      "bpf_blocked_iptables_writes",
      "gauge",
      "The BPF map's counter of iptables writes blocked on this node, as last read (-checkMap).",
    );
    for (const verdict of VERDICTS) this.#verdict.set([verdict], 0);
    for (const kind of CHECK_ERROR_KINDS) this.#errors.set([kind], 0);
    this.#checks.set([], 0);
  }

  /** When the last check completed, if one has. */
  get lastCheckAt(): Date | undefined {
    return this.#lastCheckAt;
  }

  /**
   * Records a completed check. Per-table gauges are replaced as a whole, so a table or
   * backend that is gone stops being reported instead of keeping its old value.
   */
  recordCheck(report: CheckReport, durationMs: number, now: Date): void {
    this.#rules.clear();
    this.#unexpected.clear();
    for (const { family, source, tables } of report.families) {
      for (const { table, rules, unexpected } of tables) {
        this.#rules.set([family, source, table], rules);
        this.#unexpected.set([family, source, table], unexpected.length);
      }
    }
    for (const verdict of VERDICTS) {
      this.#verdict.set([verdict], verdict === report.verdict ? 1 : 0);
    }
    for (const error of report.errors) this.#errors.add([error.kind], 1);
    this.#lastCheck.set([], now.getTime() / 1000);
    this.#duration.set([], durationMs / 1000);
    this.#checks.add([], 1);
    this.#lastCheckAt = now;
  }

  /**
   * Counts one Kubernetes API request. `result` says how it ended, e.g. the HTTP status
   * (`200`, `404`, `429`) or `timeout`/`network` when no answer came.
   */
  recordApiRequest(verb: string, resource: string, result: string): void {
    this.#api.add([verb, resource, result], 1);
  }

  /** The BPF counter as last read. Exact up to 2^53; larger values lose low digits. */
  setBpfCounter(value: bigint): void {
    this.#bpf.set([], Number(value));
  }

  /** The exposition text of every metric. */
  render(): string {
    return this.#families.map((family) => family.render()).join("");
  }
}
