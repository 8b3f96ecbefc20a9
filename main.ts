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
import { runDaemon } from "./src/daemon.ts";
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
  const extras = config.once ? undefined : await loadDaemonExtras(config);
  const metrics = extras?.metrics;
  // Not awaited here: the Kubernetes client loads while the first check reads the rules.
  const pending: PendingReporting = config.dryRun
    ? Promise.resolve(dryRunReporting(config, log, metrics))
    : kubeReporting(config, log, metrics);
  if (extras !== undefined) return await serveDaemon(config, log, pending, extras);
  return await checkOnce(config, log, pending);
}

/** What the daemon uses besides its loop, when its flags ask for it. */
interface DaemonExtras {
  metrics?: Metrics;
  startMetricsServer?: typeof import("./src/metrics_server.ts").startMetricsServer;
  startWatcher?: typeof import("./src/watch/watcher.ts").startWatcher;
}

/**
 * Loads the metrics server and the -watch monitor only when the flags ask for them (the
 * watcher reads its lines with zod), and before the Kubernetes client starts loading:
 * an import started while the client loads waits until it is done.
 */
async function loadDaemonExtras(config: Config): Promise<DaemonExtras> {
  const serving = config.metricsAddress !== undefined;
  const [metrics, server, watcher] = await Promise.all([
    serving ? import("./src/metrics.ts") : undefined,
    serving ? import("./src/metrics_server.ts") : undefined,
    config.watch ? import("./src/watch/watcher.ts") : undefined,
  ]);
  return {
    metrics: metrics && new metrics.Metrics(),
    startMetricsServer: server?.startMetricsServer,
    startWatcher: watcher?.startWatcher,
  };
}

/** `-once`: one check, reported, printed; the exit code says what it found. */
async function checkOnce(
  config: Config,
  log: Logger,
  pending: PendingReporting,
): Promise<number> {
  const [report, reporting] = await Promise.all([
    scan(config, { log, signal: stopSignal, clientLoading: !config.dryRun }),
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
  { metrics, startMetricsServer, startWatcher }: DaemonExtras,
): Promise<number> {
  let server: MetricsServer | undefined;
  if (metrics && startMetricsServer && config.metricsAddress !== undefined) {
    try {
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
  const watcher = startWatcher?.(config, log);
  try {
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
