/**
 * `-installRoutesForHealthProbeReply`, as upstream: local routes so that replies to the
 * platform's health probes leave through `lo`, ensured once before the first check.
 *
 * @module
 */

import { type CommandRunner, runCommand } from "./iptables/runner.ts";

/** The routes upstream installs; the IPv6 one only with `-ipv6`. */
export const HEALTH_PROBE_ROUTES = {
  ipv4: ["route", "replace", "169.254.7.127/32", "dev", "lo", "proto", "static", "scope", "link"],
  ipv6: [
    "-6",
    "route",
    "replace",
    "fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128",
    "dev",
    "lo",
    "proto",
    "static",
    "scope",
    "link",
  ],
} as const;

/** Runs `ip route replace ...` for each route; resolves to the error lines (empty: done). */
export async function installHealthProbeRoutes(
  ipv6: boolean,
  run: CommandRunner = runCommand,
  signal?: AbortSignal,
): Promise<string[]> {
  const routes = ipv6
    ? [HEALTH_PROBE_ROUTES.ipv4, HEALTH_PROBE_ROUTES.ipv6]
    : [HEALTH_PROBE_ROUTES.ipv4];
  const errors: string[] = [];
  for (const args of routes) {
    const command = `ip ${args.join(" ")}`;
    const outcome = await run("ip", [...args], { timeoutMs: 10_000, signal });
    switch (outcome.kind) {
      case "not-found":
        errors.push(`${command}: the ip command is not installed (iproute2)`);
        break;
      case "timeout":
        errors.push(`${command}: did not finish within 10 s`);
        break;
      case "cannot-start":
        errors.push(`${command}: ${outcome.message}`);
        break;
      case "too-large":
        errors.push(`${command}: printed more than ${outcome.limitBytes} bytes`);
        break;
      case "aborted":
        return errors; // shutting down: nothing to report
      case "exited":
        if (outcome.code !== 0) {
          errors.push(`${command}: exit ${outcome.code}: ${outcome.stderr.trim().split("\n")[0]}`);
        }
    }
  }
  return errors;
}
