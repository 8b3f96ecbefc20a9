/**
 * azure-iptables-monitor: tells whether a Kubernetes node holds iptables rules that no
 * allowlist expects. Wiring only: command line -> config -> one check or the daemon.
 *
 * @module
 */

// First, before any other module loads: SIGTERM/SIGINT handlers (see src/stop.ts).
import { exitStatusFor, onForcedExit, stoppedBy, stopSignal } from "./src/stop.ts";
import { type Config, parseCommandLine } from "./src/cli/config.ts";
import type { Metrics } from "./src/metrics.ts";
import type { MetricsServer } from "./src/metrics_server.ts";
import { exitCodeFor } from "./src/check.ts";
import { killAllChildren } from "./src/iptables/runner.ts";
import { formatJsonReport } from "./src/report/json.ts";
import { createLogger, type Logger } from "./src/report/log.ts";
import { formatTextReport } from "./src/report/text.ts";
import { dryRunReporting, kubeReporting, type PendingReporting } from "./src/reporting.ts";
import { scan } from "./src/scan.ts";

async function writeAll(stream: { write(p: Uint8Array): Promise<number> }, text: string) {
  let bytes = new TextEncoder().encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(await stream.write(bytes));
  } catch (error) {
    // A reader that went away (`| head`) wants no more; that is not our failure.
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
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
  // A shutdown that misses its deadline still ends as documented, children killed.
  onForcedExit((signal) => (config.once ? exitStatusFor(signal) : 0), killAllChildren);
  const log = createLogger({
    verbosity: config.verbosity,
    skipHeaders: config.skipHeaders,
    addDirHeader: config.addDirHeader,
  });
  // What only the daemon uses (its loop, metrics, -watch) is loaded only for the daemon.
  const metrics = config.metricsAddress !== undefined && !config.once
    ? new (await import("./src/metrics.ts")).Metrics()
    : undefined;
  // Not awaited here: the Kubernetes client loads while the first check reads the rules.
  const pending: PendingReporting = config.dryRun
    ? Promise.resolve(dryRunReporting(config, log, metrics))
    : kubeReporting(config, log, metrics);
  if (!config.once) return await serveDaemon(config, log, pending, metrics);
  return await checkOnce(config, log, pending);
}

/** `-once`: one check, reported, printed; the exit code says what it found. */
async function checkOnce(
  config: Config,
  log: Logger,
  pending: PendingReporting,
): Promise<number> {
  const [report, reporting] = await Promise.all([
    scan(config, { log, signal: stopSignal }),
    pending,
  ]);
  if (typeof reporting === "string") {
    log.error(reporting);
    return 2;
  }
  stopSignal.addEventListener("abort", () => reporting.close(), { once: true });
  const budget = { budgetMs: 10_000, signal: stopSignal };
  const failures = stopSignal.aborted ? [] : await reporting.reportCheck(report, budget);
  const blocked = stopSignal.aborted
    ? { notReported: [] }
    : await reporting.checkBlockedWrites(budget);
  failures.push(...blocked.notReported);
  await reporting.close();
  const signal = stoppedBy();
  if (signal !== undefined) {
    log.error(`stopped by ${signal} before the check was done; nothing was reported`);
    return exitStatusFor(signal);
  }
  const output = config.output === "json" ? formatJsonReport(report) : formatTextReport(report);
  await writeAll(Deno.stdout, output);
  if (failures.length > 0) {
    log.error(`the result of this check was not reported: ${failures.join("; ")}`);
    return 3;
  }
  // -checkMap asked for the counter: a map that cannot be read (its line is logged) is
  // a configuration to fix, unless the rules themselves already say more.
  const code = exitCodeFor(report);
  return blocked.unreadable !== undefined && code === 0 ? 2 : code;
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
      const { startMetricsServer } = await import("./src/metrics_server.ts");
      server = startMetricsServer(config.metricsAddress, metrics, {
        intervalSeconds: config.interval,
        warn: (line) => log.warning(line),
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
  // Loaded only for -watch: it reads xtables-monitor's lines with zod.
  const watcher = config.watch
    ? (await import("./src/watch/watcher.ts")).startWatcher(config, log)
    : undefined;
  try {
    const { runDaemon } = await import("./src/daemon.ts");
    return await runDaemon(config, {
      log,
      reporting,
      stop: stopSignal,
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
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    // A bug, not bad input: still one line, never a stack trace for the operator.
    const message = error instanceof Error ? error.message : String(error);
    console.error(`azure-iptables-monitor: internal error: ${message}`);
    code = 2;
  }
  // No process we started outlives us, and nothing still waiting (an open that a FIFO
  // blocks, say) keeps us alive.
  killAllChildren();
  Deno.exit(code);
}
