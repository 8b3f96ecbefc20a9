/**
 * The long-running node agent: a check at start, then one every interval.
 *
 * @module
 */

import type { Config } from "./cli/config.ts";
import { FamilyCaches } from "./check.ts";
import type { Logger } from "./report/log.ts";
import { scan } from "./scan.ts";

/** Runs checks until SIGTERM or SIGINT; resolves with the exit code. */
export async function runDaemon(config: Config, log: Logger): Promise<number> {
  const cache = new FamilyCaches();
  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopping = true;
    wake?.();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  try {
    while (!stopping) {
      const report = await scan(config, { log, cache });
      log.infoV(2, `verdict ${report.verdict}`);
      if (config.terminateOnSuccess && report.verdict === "false") {
        log.info("no user iptables rules found; exiting as -terminateOnSuccess asks");
        return 0;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        const timer = setTimeout(resolve, config.interval * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGINT", stop);
  }
}
