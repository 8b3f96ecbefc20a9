/**
 * SIGTERM and SIGINT, handled from the moment this module is evaluated: `main.ts`
 * imports it first, so the handlers are in place before any other module (the flag
 * parser, zod, the Kubernetes client) is loaded. A signal aborts {@linkcode stopSignal},
 * which every long wait listens to (save commands, API requests, the BPF read, the
 * route install, `-watch`), and arms a deadline that ends the process whatever it is
 * doing, so that shutdown never takes more than {@linkcode STOP_DEADLINE_MS}.
 *
 * No imports: this must load and run before anything slow.
 *
 * @module
 */

/** The signals that stop the monitor. */
export type StopSignalName = "SIGTERM" | "SIGINT";

/**
 * From the signal to the forced exit. Kubernetes waits 30 s before SIGKILL; the README
 * promises 5 s, and the forced exit needs a moment to kill children and flush.
 */
export const STOP_DEADLINE_MS = 4_500;

const controller = new AbortController();
let received: StopSignalName | undefined;
let forcedExit: (signal: StopSignalName) => number = (signal) => exitStatusFor(signal);
const beforeExit: (() => void)[] = [];

/** Aborts when SIGTERM or SIGINT arrives. */
export const stopSignal: AbortSignal = controller.signal;

/** The signal that stopped us, if one did. */
export function stoppedBy(): StopSignalName | undefined {
  return received;
}

/** The status a shell reports for a process killed by `signal`: 143 or 130. */
export function exitStatusFor(signal: StopSignalName): number {
  return 128 + (signal === "SIGTERM" ? 15 : 2);
}

/**
 * Sets the exit status of a shutdown that misses its deadline (the daemon: 0, since
 * being stopped is its normal end), and what must happen before that exit (killing
 * the children).
 */
export function onForcedExit(status: (signal: StopSignalName) => number, cleanup: () => void) {
  forcedExit = status;
  beforeExit.push(cleanup);
}

function onSignal(signal: StopSignalName) {
  if (received !== undefined) return;
  received = signal;
  controller.abort(new Error(`stopped by ${signal}`));
  const timer = setTimeout(() => {
    for (const cleanup of beforeExit) cleanup();
    Deno.exit(forcedExit(signal));
  }, STOP_DEADLINE_MS);
  Deno.unrefTimer(timer);
}

Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
