/**
 * azure-iptables-monitor: tells whether a Kubernetes node holds iptables rules that no
 * allowlist expects. Wiring only: command line -> config -> one check or the daemon.
 *
 * @module
 */

import { type Config, parseCommandLine } from "./src/cli/config.ts";
import { Metrics } from "./src/metrics.ts";
import { type MetricsServer, startMetricsServer } from "./src/metrics_server.ts";
import { exitCodeFor } from "./src/check.ts";
import { linearEngineAvailable } from "./src/patterns/regexp.ts";
import { formatJsonReport } from "./src/report/json.ts";
import { createLogger, type Logger } from "./src/report/log.ts";
import { formatTextReport } from "./src/report/text.ts";
import { runDaemon } from "./src/daemon.ts";
import { dryRunReporting, kubeReporting, type PendingReporting } from "./src/reporting.ts";
import { scan } from "./src/scan.ts";
import { startWatcher } from "./src/watch/watcher.ts";

async function writeAll(stream: { write(p: Uint8Array): Promise<number> }, text: string) {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(await stream.write(bytes));
}

async function main(args: string[]): Promise<number> {
  const commandLine = parseCommandLine(args, {
    NODE_NAME: Deno.env.get("NODE_NAME"),
    KUBECONFIG: Deno.env.get("KUBECONFIG"),
  });
  if (commandLine.kind === "exit") {
    await writeAll(Deno.stdout, commandLine.stdout);
    await writeAll(Deno.stderr, commandLine.stderr);
    return commandLine.code;
  }
  const { config } = commandLine;
  const log = createLogger({
    verbosity: config.verbosity,
    skipHeaders: config.skipHeaders,
    addDirHeader: config.addDirHeader,
  });
  if (!linearEngineAvailable) {
    log.warning(
      "V8's linear-time regexp engine is off, so a hostile pattern could slow checks down: " +
        "run the compiled binary or `deno task monitor`, which set its V8 flags",
    );
  }
  const metrics = config.metricsAddress !== undefined && !config.once ? new Metrics() : undefined;
  // Not awaited here: the Kubernetes client loads while the first check reads the rules.
  const pending: PendingReporting = config.dryRun
    ? Promise.resolve(dryRunReporting(config, log, metrics))
    : kubeReporting(config, log, metrics);
  if (!config.once) return await serveDaemon(config, log, pending, metrics);
  const [report, reporting] = await Promise.all([scan(config, { log }), pending]);
  if (typeof reporting === "string") {
    log.error(reporting);
    return 2;
  }
  const budget = { budgetMs: 10_000, signal: new AbortController().signal };
  await reporting.reportCheck(report, budget);
  await reporting.checkBlockedWrites(budget);
  await reporting.close();
  const output = config.output === "json" ? formatJsonReport(report) : formatTextReport(report);
  await writeAll(Deno.stdout, output);
  return exitCodeFor(report);
}

/** The daemon, with the metrics server around it when `-metricsAddress` asks for one. */
async function serveDaemon(
  config: Config,
  log: Logger,
  reporting: PendingReporting,
  metrics: Metrics | undefined,
): Promise<number> {
  let server: MetricsServer | undefined;
  if (metrics && config.metricsAddress !== undefined) {
    try {
      server = startMetricsServer(config.metricsAddress, metrics, {
        intervalSeconds: config.interval,
      });
    } catch (error) {
      log.error(
        `-metricsAddress=${config.metricsAddress}: ${
          error instanceof Error ? error.message : error
        }`,
      );
      return 2;
    }
    log.info(`serving /metrics and /healthz on ${config.metricsAddress}`);
  }
  const watcher = config.watch ? startWatcher(config, log) : undefined;
  try {
    return await runDaemon(config, {
      log,
      reporting,
      onCheck: metrics && ((report, ms) => metrics.recordCheck(report, ms, new Date())),
      nextTrigger: watcher?.nextTrigger,
      takeChangeHint: watcher?.takeChangeHint,
    });
  } finally {
    await watcher?.close();
    await server?.close();
  }
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (error) {
    // A bug, not bad input: still one line, never a stack trace for the operator.
    const message = error instanceof Error ? error.message : String(error);
    console.error(`azure-iptables-monitor: internal error: ${message}`);
    Deno.exitCode = 2;
  }
}
