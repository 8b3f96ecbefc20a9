/**
 * {@linkcode Reporting} through the Kubernetes API: the label and Events of
 * src/kube/reporter.ts, and the BPF block counter. Loaded by `kubeReporting` in
 * reporting.ts with one dynamic import, which brings `@kubernetes/client-node` with it.
 *
 * @module
 */

import { CounterWatch } from "./bpf/counter.ts";
import type { Config } from "./cli/config.ts";
import { createKubeApi, type KubeApi } from "./kube/client.ts";
import { loadKubeConfig } from "./kube/config.ts";
import { NodeReporter } from "./kube/reporter.ts";
import { summaryOf } from "./kube/summary.ts";
import type { Metrics } from "./metrics.ts";
import { logCounter, type Reporting } from "./reporting.ts";
import type { Logger } from "./report/log.ts";

/**
 * Reporting for `NODE_NAME`, or the line saying why there is no client configuration.
 * Starts reading the CiliumNode at once, so that the first check, still running, does
 * not wait for that read to report.
 */
export function createKubeReporting(
  config: Config,
  log: Logger,
  metrics?: Metrics,
): Reporting | string {
  let api: KubeApi;
  try {
    api = createKubeApi(loadKubeConfig({ kubeconfig: config.kubeconfig }), {
      onRequest: (request, result) =>
        metrics?.recordApiRequest(request.verb, request.resource, result),
    });
  } catch (error) {
    return `no Kubernetes client configuration: ${error instanceof Error ? error.message : error}`;
  }
  const nodeName = config.nodeName!;
  const reporter = new NodeReporter({ api, nodeName, events: config.events, log });
  reporter.readAhead();
  const watch = config.checkMap ? CounterWatch.forMap(config.mapPath) : undefined;
  return {
    async reportCheck(report, budget, hint) {
      const { label, event } = await reporter.reportCheck(summaryOf(report), budget, hint);
      const failures: string[] = [];
      if (label.kind === "failed") failures.push(`label not written: ${label.message}`);
      if (label.kind === "missing") {
        failures.push(`label not written: CiliumNode ${label.name} does not exist`);
      }
      if (event?.kind === "failed") failures.push(`${event.reason} Event: ${event.message}`);
      return failures;
    },
    async checkBlockedWrites(budget) {
      if (!watch) return { notReported: [] };
      const notReported: string[] = [];
      const change = await watch.check(budget.signal);
      await logCounter(change, log, metrics, async () => {
        const event = await reporter.reportBlocked(budget);
        if (event?.kind === "failed") notReported.push(`${event.reason} Event: ${event.message}`);
      });
      return { unreadable: change.kind === "error" ? change.message : undefined, notReported };
    },
    close() {
      api.close();
      return Promise.resolve();
    },
  };
}
