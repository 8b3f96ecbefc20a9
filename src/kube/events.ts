import type { KubeApi } from "./client.ts";
import type { Clock } from "./clock.ts";
import { KubeApiError } from "./errors.ts";
import type { KubeLogger } from "./logger.ts";
import { type RetryBudget, withRetries } from "./retry.ts";

/** Upstream's Event namespace and source component. */
export const EVENT_NAMESPACE = "default";
export const EVENT_COMPONENT = "azure-iptables-monitor";

/** What happened to an Event in one report. */
export type EventOutcome =
  | { kind: "created"; reason: string; name: string; count: number }
  | { kind: "updated"; reason: string; name: string; count: number }
  | { kind: "failed"; reason: string; message: string };

/** What {@linkcode EventRecorder} needs. */
export interface EventContext {
  api: KubeApi;
  nodeName: string;
  clock: Clock;
  log: KubeLogger;
}

interface ActiveEvent {
  name: string;
  namespace: string;
  count: number;
}

/** How often a name collision (HTTP 409 on create) is answered with the next name. */
const NAME_ATTEMPTS = 3;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Sends Events about the node the way client-go's correlator does: the first occurrence
 * of a reason creates an Event, repeats patch that Event's count, lastTimestamp and
 * message instead of creating a new object every interval. An Event that is gone
 * (the API server drops Events after an hour by default) is created afresh.
 */
export class EventRecorder {
  readonly #context: EventContext;
  readonly #active = new Map<string, ActiveEvent>();
  #lastNameSecond = 0;

  constructor(context: EventContext) {
    this.#context = context;
  }

  /** Whether an Event with `reason` was sent and is being aggregated. */
  isActive(reason: string): boolean {
    return this.#active.has(reason);
  }

  /** Ends aggregation for `reason`: its next occurrence creates a new Event. */
  forget(reason: string): void {
    this.#active.delete(reason);
  }

  /** Records one occurrence; logs the outcome and never throws for API errors. */
  async record(
    reason: string,
    type: "Normal" | "Warning",
    message: string,
    budget: RetryBudget,
  ): Promise<EventOutcome> {
    const { api, clock, log } = this.#context;
    const active = this.#active.get(reason);
    if (active !== undefined) {
      try {
        const count = active.count + 1;
        const ref = await withRetries(
          () =>
            api.patchEvent(active.namespace, active.name, {
              count,
              lastTimestamp: new Date(clock.now()),
              message,
            }),
          budget,
          clock,
          log,
        );
        active.count = Math.max(count, ref.count);
        log.v(2).info(
          `updated Event ${active.namespace}/${active.name} (${reason}, count ${active.count})`,
        );
        return { kind: "updated", reason, name: active.name, count: active.count };
      } catch (error) {
        if (!(error instanceof KubeApiError && error.notFound)) {
          const text = `Event ${reason} not updated: ${messageOf(error)}`;
          log.error(text);
          return { kind: "failed", reason, message: text };
        }
        log.v(2).info(`Event ${active.namespace}/${active.name} is gone; creating a new one`);
        this.#active.delete(reason);
      }
    }
    return await this.#create(reason, type, message, budget);
  }

  /** `<node>.<unix-seconds>` as upstream names them, never reusing a second. */
  #nextName(): string {
    const second = Math.max(
      Math.floor(this.#context.clock.now() / 1000),
      this.#lastNameSecond + 1,
    );
    this.#lastNameSecond = second;
    return `${this.#context.nodeName}.${second}`;
  }

  /** The Node's UID, read for every new Event so that a re-created Node is followed. */
  async #nodeUid(budget: RetryBudget): Promise<string | undefined> {
    const { api, nodeName, clock, log } = this.#context;
    try {
      const node = await withRetries(() => api.getNode(nodeName), budget, clock, log);
      return node.uid;
    } catch (error) {
      log.warning(
        `Event sent without the Node's UID (kubectl describe node will not show it): ` +
          messageOf(error),
      );
      return undefined;
    }
  }

  async #create(
    reason: string,
    type: "Normal" | "Warning",
    message: string,
    budget: RetryBudget,
  ): Promise<EventOutcome> {
    const { api, nodeName, clock, log } = this.#context;
    const uid = await this.#nodeUid(budget);
    for (let attempt = 1;; attempt++) {
      const now = new Date(clock.now());
      const name = this.#nextName();
      // A create that timed out or lost its connection may have succeeded: a 409 on
      // its retry then means the Event is ours, not a name taken by someone else.
      let maybeSent = false;
      const create = async () => {
        try {
          return await api.createEvent({
            name,
            namespace: EVENT_NAMESPACE,
            node: { name: nodeName, uid },
            reason,
            message,
            type,
            source: { component: EVENT_COMPONENT, host: nodeName },
            count: 1,
            firstTimestamp: now,
            lastTimestamp: now,
          });
        } catch (error) {
          if (
            error instanceof KubeApiError && (error.kind === "timeout" || error.kind === "network")
          ) {
            maybeSent = true;
          }
          throw error;
        }
      };
      try {
        const ref = await withRetries(create, budget, clock, log);
        this.#active.set(reason, { name: ref.name, namespace: ref.namespace, count: ref.count });
        log.info(`created Event ${ref.namespace}/${ref.name}: ${type} ${reason}`);
        return { kind: "created", reason, name: ref.name, count: ref.count };
      } catch (error) {
        if (error instanceof KubeApiError && error.conflict && maybeSent) {
          this.#active.set(reason, { name, namespace: EVENT_NAMESPACE, count: 1 });
          log.info(`created Event ${EVENT_NAMESPACE}/${name}: ${type} ${reason} (on a retry)`);
          return { kind: "created", reason, name, count: 1 };
        }
        if (error instanceof KubeApiError && error.conflict && attempt < NAME_ATTEMPTS) {
          log.v(2).info(`Event name ${name} is taken; trying the next one`);
          continue;
        }
        const text = `Event ${reason} not created: ${messageOf(error)}`;
        log.error(text);
        return { kind: "failed", reason, message: text };
      }
    }
  }
}
