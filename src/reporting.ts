/**
 * The Kubernetes edge of the daemon: the label, the Events and the BPF block counter,
 * behind one small interface so the loop does not know about client-node. The client
 * comes with kube_reporting.ts, imported only here, on first use: a `-dryRun` run never
 * pays for loading it.
 *
 * @module
 */

import type { CheckReport } from "./check.ts";
import type { Config } from "./cli/config.ts";
import type { Metrics } from "./metrics.ts";
import type { Logger } from "./report/log.ts";

/** What the daemon does with each check's result, and at shutdown. */
export interface Reporting {
  /**
   * Writes the label (and Events) for one check; never throws. `hint` (-watch) names
   * who last changed the ruleset, for the UnexpectedIPTablesRules Event. Resolves to
   * what could not be written, one line each (empty: everything was).
   */
  reportCheck(
    report: CheckReport,
    budget: { budgetMs: number; signal: AbortSignal },
    hint?: string,
  ): Promise<string[]>;
  /**
   * Reads the BPF counter and reports an increase (with `-checkMap`); never throws.
   * Resolves to why the counter could not be read (logged already), if it could not,
   * and the Events that could not be written, one line each.
   */
  checkBlockedWrites(
    budget: { budgetMs: number; signal: AbortSignal },
  ): Promise<BlockedWritesOutcome>;
  close(): Promise<void>;
}

/** What checking the BPF counter gave, for `-once`'s exit code. */
export interface BlockedWritesOutcome {
  /** Why the counter could not be read (a missing map, a map of the wrong kind, ...). */
  unreadable?: string;
  /** Events that could not be written. */
  notReported: string[];
}

/**
 * Reporting still being set up (the Kubernetes client loads in about a second), or the
 * line saying why it cannot work. The first check runs meanwhile and waits for it only
 * to report.
 */
export type PendingReporting = Promise<Reporting | string>;

/** Reporting that only logs: `-dryRun`. */
export function dryRunReporting(config: Config, log: Logger, metrics?: Metrics): Reporting {
  const counter = config.checkMap ? import("./bpf/counter.ts") : undefined;
  let watch: import("./bpf/counter.ts").CounterWatch | undefined;
  return {
    reportCheck(report) {
      log.infoV(
        2,
        `dry run: the label would be ${
          report.verdict === "unknown" ? "left as it is" : `"${report.verdict}"`
        }`,
      );
      return Promise.resolve([]);
    },
    async checkBlockedWrites(budget) {
      if (!counter) return { notReported: [] };
      watch ??= (await counter).CounterWatch.forMap(config.mapPath);
      const change = await watch.check(budget.signal);
      await logCounter(
        change,
        log,
        metrics,
        () => log.info("dry run: would send a BlockedIPTablesRule event"),
      );
      return { unreadable: change.kind === "error" ? change.message : undefined, notReported: [] };
    },
    close: () => Promise.resolve(),
  };
}

/** Logs what reading the BPF counter gave, and calls `onGrew` when it grew. */
export function logCounter(
  change: Awaited<ReturnType<import("./bpf/counter.ts").CounterWatch["check"]>>,
  log: Logger,
  metrics: Metrics | undefined,
  onGrew: () => void | Promise<void>,
): void | Promise<void> {
  if (change.kind !== "error") metrics?.setBpfCounter(change.value);
  switch (change.kind) {
    case "error":
      log.error(change.message);
      return;
    case "baseline":
      log.infoV(2, `BPF block counter starts at ${change.value}`);
      return;
    case "reset":
      log.warning(
        `BPF block counter went down from ${change.previous} to ${change.value}; new baseline`,
      );
      return;
    case "unchanged":
      log.infoV(2, `BPF block counter unchanged at ${change.value}`);
      return;
    case "grew":
      log.info(
        `BPF block counter grew from ${change.previous} to ${change.value}: ` +
          "a process tried to add iptables rules and was blocked",
      );
      return onGrew();
  }
}

/**
 * Reporting to the API server for `NODE_NAME`. Resolves to an error line when no
 * client configuration works (no kubeconfig and not in a cluster).
 *
 * The client and everything that uses it load as one module graph, with one dynamic
 * import: several imports at once of modules that share the client take half as long
 * again as one, and this import is what a start to the first report waits for.
 */
export async function kubeReporting(
  config: Config,
  log: Logger,
  metrics?: Metrics,
): Promise<Reporting | string> {
  const { createKubeReporting } = await import("./kube_reporting.ts");
  return createKubeReporting(config, log, metrics);
}
