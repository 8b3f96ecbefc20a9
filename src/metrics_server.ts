/**
 * Serves `/metrics` (Prometheus text) and `/healthz` for `-metricsAddress`. Health means
 * "checks keep completing": a daemon stuck on a hung command or a dead loop fails its
 * liveness probe and is restarted, while a slow API server does not make it unhealthy.
 *
 * @module
 */

import { type HttpLimits, type HttpResponse, startHttpServer } from "./http_server.ts";
import { type Metrics, METRICS_CONTENT_TYPE } from "./metrics.ts";

/** Health fails when no check completed within this many intervals. */
export const HEALTHY_INTERVALS = 3;

/** A running metrics server. */
export interface MetricsServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /** The address listened on, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly hostname: string;
  /** Stops serving; resolves when open connections are done. */
  close(): Promise<void>;
}

/** What {@linkcode startMetricsServer} needs besides the address. */
export interface MetricsServerOptions {
  /** `-interval`: health allows {@linkcode HEALTHY_INTERVALS} of them between checks. */
  intervalSeconds: number;
  /** The clock; tests inject one. */
  now?: () => Date;
  /** Hears accept and connection errors, rate-limited (the daemon's warning log). */
  warn?: (line: string) => void;
  /** Tighter limits than the defaults (`DEFAULT_LIMITS` in `http_server.ts`); for tests. */
  limits?: Partial<HttpLimits>;
}

/** The health of the daemon, and the short text `/healthz` answers with. */
export interface Health {
  healthy: boolean;
  message: string;
}

/**
 * `host:port` as `-metricsAddress` takes it: `:9090` means every IPv4 interface, a host
 * may be a name, an IPv4 address or a bracketed IPv6 address (`[::]:9090`).
 */
export function parseListenAddress(address: string): { hostname: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || port > 65535) {
    throw new Error(`invalid metrics address ${JSON.stringify(address)}: must be host:port`);
  }
  let host = match[1];
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  else if (host.includes(":")) {
    throw new Error(
      `invalid metrics address ${JSON.stringify(address)}: write IPv6 as [addr]:port`,
    );
  }
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

function ago(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))}s`;
}

/**
 * Healthy while a check completed within {@linkcode HEALTHY_INTERVALS} intervals, counting
 * from the start until the first check completes.
 */
export function healthOf(
  lastCheckAt: Date | undefined,
  startedAt: Date,
  intervalSeconds: number,
  now: Date,
): Health {
  const allowedMs = HEALTHY_INTERVALS * intervalSeconds * 1000;
  const since = (lastCheckAt ?? startedAt).getTime();
  const elapsed = now.getTime() - since;
  const window = `${HEALTHY_INTERVALS * intervalSeconds}s (${HEALTHY_INTERVALS} intervals ` +
    `of ${intervalSeconds}s)`;
  if (elapsed <= allowedMs) {
    const what = lastCheckAt === undefined
      ? `started ${ago(elapsed)} ago, first check not completed yet`
      : `last check completed ${ago(elapsed)} ago`;
    return { healthy: true, message: `ok: ${what}` };
  }
  const what = lastCheckAt === undefined
    ? `none since the start ${ago(elapsed)} ago`
    : `the last one ${ago(elapsed)} ago`;
  return { healthy: false, message: `unhealthy: no check completed within ${window}; ${what}` };
}

function text(status: number, body: string, headers: Record<string, string> = {}): HttpResponse {
  return {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
    body: `${body}\n`,
  };
}

/**
 * Starts serving `/metrics` and `/healthz` on `address` (`host:port`) with the small
 * HTTP/1.1 server of `http_server.ts` (deadlines, a connection cap, no body, errors
 * that never end the daemon). Throws one clear line when the address cannot be used
 * (e.g. the port is taken).
 */
export function startMetricsServer(
  address: string,
  metrics: Metrics,
  options: MetricsServerOptions,
): MetricsServer {
  const { hostname, port } = parseListenAddress(address);
  const now = options.now ?? (() => new Date());
  const startedAt = now();
  try {
    const server = startHttpServer({
      hostname,
      port,
      limits: options.limits,
      warn: options.warn,
      handler(request) {
        if (request.path !== "/metrics" && request.path !== "/healthz") {
          return text(404, "not found: the monitor serves /metrics and /healthz");
        }
        if (request.path === "/metrics") {
          return {
            status: 200,
            headers: { "content-type": METRICS_CONTENT_TYPE },
            body: metrics.render(),
          };
        }
        const health = healthOf(metrics.lastCheckAt, startedAt, options.intervalSeconds, now());
        return text(health.healthy ? 200 : 503, health.message);
      },
    });
    return { port: server.port, hostname: server.hostname, close: () => server.close() };
  } catch (error) {
    const reason = error instanceof Deno.errors.AddrInUse
      ? "the address is already in use"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new Error(`cannot serve metrics on ${address}: ${reason}`);
  }
}
