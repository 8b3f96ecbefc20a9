/**
 * The metrics server alone in a process of its own, for tests that must run it with few
 * file descriptors (`prlimit --nofile=N deno run -A metrics_harness.ts MAX_CONNECTIONS`).
 * Prints the port on stdout, its warnings on stderr, and exits when stdin closes.
 */
import { Metrics } from "../../src/metrics.ts";
import { startMetricsServer } from "../../src/metrics_server.ts";

// As the daemon does at its start; Deno sets up signal handling on first use, which
// needs a descriptor of its own.
const stop = new AbortController();
Deno.addSignalListener("SIGTERM", () => stop.abort());

const maxConnections = Number(Deno.args[0]);
const server = startMetricsServer("127.0.0.1:0", new Metrics(), {
  intervalSeconds: 300,
  limits: Number.isFinite(maxConnections) ? { maxConnections } : {},
  warn: (line) => console.error(line),
});
console.log(server.port);
for await (const _ of Deno.stdin.readable) {
  // nothing: wait for the end of stdin
}
await server.close();
