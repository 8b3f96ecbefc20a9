import type { CiliumNodeLabels, KubeApi } from "./client.ts";
import { type Clock, systemClock } from "./clock.ts";
import { type EventOutcome, EventRecorder } from "./events.ts";
import {
  type CheckSummary,
  type LabelOutcome,
  syncLabel,
  type Verdict,
  verdictOf,
} from "./label.ts";
import type { KubeLogger } from "./logger.ts";
import {
  BLOCKED_MESSAGE,
  BLOCKED_REASON,
  RESOLVED_MESSAGE,
  RESOLVED_REASON,
  UNEXPECTED_REASON,
  unexpectedRulesMessage,
} from "./messages.ts";
import type { RetryBudget } from "./retry.ts";

/** How old a CiliumNode read ahead may be and still stand for one read now. */
export const READ_AHEAD_MAX_AGE_MS = 5_000;

/** What {@linkcode NodeReporter} needs. */
export interface NodeReporterOptions {
  api: KubeApi;
  /** `NODE_NAME`: the Node and the CiliumNode share it. */
  nodeName: string;
  /** `-events`: send Events besides setting the label. */
  events: boolean;
  log: KubeLogger;
  clock?: Clock;
}

/**
 * How much time the API requests of one report may take, retries included, and a
 * signal that stops retrying at shutdown (a request already sent is let finish).
 */
export interface ReportBudget {
  budgetMs: number;
  signal?: AbortSignal;
}

/** What one check's report did; every failure is inside, nothing is thrown. */
export interface CheckReport {
  verdict: Verdict;
  label: LabelOutcome;
  /** Unset when `-events` is off or the check warranted no Event. */
  event?: EventOutcome;
}

/**
 * Reports check results for one node: the label on its CiliumNode and, with `-events`,
 * Events on its Node. Holds the Event aggregation state, so the daemon keeps one
 * instance for its whole life.
 */
export class NodeReporter {
  readonly #options: NodeReporterOptions;
  readonly #clock: Clock;
  readonly #events: EventRecorder;
  /** Until the label has been read once: a "true" found then is a warning from before a restart. */
  #beforeFirstLabel = true;
  /** The CiliumNode being read ahead of the next report, and when that read started. */
  #readAhead: { started: number; read: Promise<CiliumNodeLabels | undefined> } | undefined;

  constructor(options: NodeReporterOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#events = new EventRecorder({
      api: options.api,
      nodeName: options.nodeName,
      clock: this.#clock,
      log: options.log,
    });
  }

  /**
   * Starts reading the CiliumNode now, while the first check still runs, so that its
   * report writes the label without waiting for that read (one attempt; on a failure
   * the report reads again, with retries). Used by a report that starts within
   * {@linkcode READ_AHEAD_MAX_AGE_MS}; a later one reads afresh.
   */
  readAhead(): void {
    const read = this.#options.api.getCiliumNode(this.#options.nodeName).catch(() => undefined);
    this.#readAhead = { started: this.#clock.now(), read };
  }

  /** The read started by {@linkcode readAhead}, once, if it is recent enough. */
  #takeReadAhead(): Promise<CiliumNodeLabels | undefined> | undefined {
    const ahead = this.#readAhead;
    this.#readAhead = undefined;
    if (ahead === undefined || this.#clock.now() - ahead.started > READ_AHEAD_MAX_AGE_MS) {
      return undefined;
    }
    return ahead.read;
  }

  #retryBudget(budget: ReportBudget): RetryBudget {
    return { deadline: this.#clock.now() + budget.budgetMs, signal: budget.signal };
  }

  /**
   * Sets the label from `summary` and sends the matching Event. A node that becomes
   * clean after an UnexpectedIPTablesRules warning gets one Normal
   * `UnexpectedIPTablesRulesResolved` Event: otherwise `kubectl describe node` keeps
   * showing a recent warning for up to an hour with nothing saying it is over. `hint`
   * (-watch: who last changed the ruleset) is added to the warning's message.
   */
  async reportCheck(
    summary: CheckSummary,
    budget: ReportBudget,
    hint?: string,
  ): Promise<CheckReport> {
    const retry = this.#retryBudget(budget);
    const verdict = verdictOf(summary);
    const label = await syncLabel(
      {
        api: this.#options.api,
        nodeName: this.#options.nodeName,
        clock: this.#clock,
        log: this.#options.log,
        readAhead: this.#takeReadAhead(),
      },
      summary,
      retry,
    );
    const firstLabel = this.#beforeFirstLabel &&
      (label.kind === "written" || label.kind === "unchanged");
    if (firstLabel) this.#beforeFirstLabel = false;
    if (!this.#options.events) return { verdict, label };
    if (verdict === "true") {
      const message = unexpectedRulesMessage(summary.unexpected, hint);
      const event = await this.#events.record(UNEXPECTED_REASON, "Warning", message, retry);
      return { verdict, label, event };
    }
    // A label found "true" at the first read after a start was our warning before a
    // restart; later, a "true" someone set by hand on a clean node resolves nothing.
    const cleared = firstLabel && label.kind === "written" && label.previous === "true";
    if (verdict === "false" && (cleared || this.#events.isActive(UNEXPECTED_REASON))) {
      this.#events.forget(UNEXPECTED_REASON);
      const event = await this.#events.record(RESOLVED_REASON, "Normal", RESOLVED_MESSAGE, retry);
      this.#events.forget(RESOLVED_REASON);
      return { verdict, label, event };
    }
    return { verdict, label };
  }

  /**
   * Reports that the BPF block counter grew since the last check: a
   * `BlockedIPTablesRule` Warning, aggregated like the others. Does nothing (and
   * returns undefined) without `-events`.
   */
  async reportBlocked(budget: ReportBudget): Promise<EventOutcome | undefined> {
    if (!this.#options.events) return undefined;
    return await this.#events.record(
      BLOCKED_REASON,
      "Warning",
      BLOCKED_MESSAGE,
      this.#retryBudget(budget),
    );
  }
}
