/**
 * The reporting edge with the real `@kubernetes/client-node` against the HTTPS API
 * fixture: the label is written only when it differs, fail-closed, Events aggregated,
 * and every API fault ends in a result, never an exception.
 */

import assert from "node:assert/strict";
import { ApiFixture, type JsonObject } from "./_support/api_fixture.ts";
import { requires } from "./_support/requires.ts";
import { createKubeApi, type KubeApi } from "../src/kube/client.ts";
import type { Clock } from "../src/kube/clock.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { type CheckSummary, LABEL_KEY } from "../src/kube/label.ts";
import type { KubeLogger } from "../src/kube/logger.ts";
import {
  BLOCKED_MESSAGE,
  BLOCKED_REASON,
  RESOLVED_REASON,
  UNEXPECTED_REASON,
  type UnexpectedRule,
} from "../src/kube/messages.ts";
import { NodeReporter, type ReportBudget } from "../src/kube/reporter.ts";

const NODE = "aks-nodepool1-12345678-vmss000000";
const BUDGET: ReportBudget = { budgetMs: 60_000 };
const needs = requires({ commands: ["openssl"] });
const CILIUM_PATH = `/apis/cilium.io/v2/ciliumnodes/${NODE}`;
const EVENTS_PATH = /^\/api\/v1\/namespaces\/default\/events/;

/** Records log lines as `I msg`, `W msg`, `E msg`, `V2 msg`. */
class RecordingLog implements KubeLogger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(`I ${message}`);
  }
  warning(message: string): void {
    this.lines.push(`W ${message}`);
  }
  error(message: string): void {
    this.lines.push(`E ${message}`);
  }
  v(level: number): { info(message: string): void } {
    return { info: (message) => this.lines.push(`V${level} ${message}`) };
  }
  has(pattern: RegExp): boolean {
    return this.lines.some((line) => pattern.test(line));
  }
}

/** Virtual time: sleeping advances it at once and is recorded. */
class FakeClock implements Clock {
  time = Date.UTC(2025, 10, 26, 14, 0, 0);
  readonly sleeps: number[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += ms;
    return Promise.resolve();
  }
}

const CLEAN: CheckSummary = { unexpected: [], unreadable: [] };

function rule(text: string, table = "filter"): UnexpectedRule {
  return { family: "ipv4", table, chain: text.split(" ")[1] ?? "INPUT", rule: text };
}

const DIRTY: CheckSummary = {
  unexpected: [rule("-A INPUT -s 1.2.3.4/32 -j DROP"), rule("-A OUTPUT -d 5.6.7.8/32 -j DROP")],
  unreadable: [],
};

interface Setup {
  api: ApiFixture;
  reporter: NodeReporter;
  log: RecordingLog;
  clock: FakeClock;
  nodeUid: string;
}

async function withSetup(
  options: { events?: boolean; seed?: boolean; labels?: Record<string, string> },
  body: (setup: Setup) => Promise<void>,
): Promise<void> {
  const api = await ApiFixture.start();
  let kube: KubeApi | undefined;
  try {
    if (options.seed ?? true) api.seedCiliumNode(NODE, options.labels ?? {});
    const nodeUid = api.seedNode(NODE);
    const log = new RecordingLog();
    const clock = new FakeClock();
    kube = createKubeApi(loadKubeConfig({ kubeconfig: api.kubeconfigPath }));
    const reporter = new NodeReporter({
      api: kube,
      nodeName: NODE,
      events: options.events ?? false,
      log,
      clock,
    });
    await body({ api, reporter, log, clock, nodeUid });
  } finally {
    kube?.close();
    await api.stop();
  }
}

function field(object: JsonObject, ...path: string[]): unknown {
  let current: unknown = object;
  for (const key of path) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) {
      return undefined;
    }
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

Deno.test({
  name: "reporter: N unchanged checks make one PATCH, with a merge patch of the label only",
  ...needs,
  async fn() {
    await withSetup({ labels: { "other.example/keep": "yes" } }, async ({ api, reporter }) => {
      const outcomes = [];
      for (let i = 0; i < 5; i++) outcomes.push((await reporter.reportCheck(CLEAN, BUDGET)).label);
      assert.deepEqual(outcomes[0], { kind: "written", previous: undefined, value: "false" });
      for (const outcome of outcomes.slice(1)) {
        assert.deepEqual(outcome, { kind: "unchanged", value: "false" });
      }
      const patches = api.requests({ method: "PATCH", path: CILIUM_PATH });
      assert.deepEqual(patches.length, 1);
      assert.deepEqual(patches[0].contentType, "application/merge-patch+json");
      assert.deepEqual(JSON.parse(patches[0].body), {
        metadata: { labels: { [LABEL_KEY]: "false" } },
      });
      const reads = api.requests({ method: "GET", path: CILIUM_PATH });
      assert.deepEqual(reads.length, 5);
      assert(reads.every((read) => read.query === "resourceVersion=0"));
      assert.deepEqual(api.labels(NODE), { "other.example/keep": "yes", [LABEL_KEY]: "false" });
    });
  },
});

/** Waits until the fixture has answered `count` reads of the CiliumNode. */
async function served(api: ApiFixture, count: number): Promise<void> {
  for (let waited = 0; waited < 5_000; waited += 10) {
    const reads = api.requests({ method: "GET", path: CILIUM_PATH });
    if (reads.filter((read) => read.status !== undefined).length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the fixture did not answer ${count} reads`);
}

Deno.test({
  name: "reporter: a CiliumNode read ahead of the first report stands for its read, once",
  ...needs,
  async fn() {
    await withSetup({}, async ({ api, reporter, clock }) => {
      reporter.readAhead();
      await served(api, 1);
      api.setLabel(NODE, LABEL_KEY, "false"); // after the read: the report does not see it
      const first = await reporter.reportCheck(CLEAN, BUDGET);
      assert.deepEqual(first.label, { kind: "written", previous: undefined, value: "false" });
      assert.equal(api.requests({ method: "GET", path: CILIUM_PATH }).length, 1);
      // The next report reads again.
      assert.deepEqual((await reporter.reportCheck(CLEAN, BUDGET)).label.kind, "unchanged");
      assert.equal(api.requests({ method: "GET", path: CILIUM_PATH }).length, 2);
      // A read ahead that is too old, or that failed, is read again with retries.
      reporter.readAhead();
      await served(api, 3);
      clock.time += 5_001;
      api.setLabel(NODE, LABEL_KEY, null);
      assert.deepEqual((await reporter.reportCheck(CLEAN, BUDGET)).label.kind, "written");
      assert.equal(api.requests({ method: "GET", path: CILIUM_PATH }).length, 4);
      api.inject({ kind: "status", status: 503 }, { method: "GET", path: CILIUM_PATH, times: 1 });
      reporter.readAhead();
      api.setLabel(NODE, LABEL_KEY, null);
      assert.deepEqual((await reporter.reportCheck(CLEAN, BUDGET)).label.kind, "written");
      assert.equal(api.requests({ method: "GET", path: CILIUM_PATH }).length, 6);
    });
  },
});

Deno.test({
  name: "reporter: a label changed by hand is put back at the next check",
  ...needs,
  async fn() {
    await withSetup({}, async ({ api, reporter, log }) => {
      await reporter.reportCheck(CLEAN, BUDGET);
      api.setLabel(NODE, LABEL_KEY, "true");
      const report = await reporter.reportCheck(CLEAN, BUDGET);
      assert.deepEqual(report.label, { kind: "written", previous: "true", value: "false" });
      assert.deepEqual(api.labels(NODE)?.[LABEL_KEY], "false");
      api.setLabel(NODE, LABEL_KEY, null);
      assert.deepEqual((await reporter.reportCheck(CLEAN, BUDGET)).label.kind, "written");
      assert.deepEqual(api.labels(NODE)?.[LABEL_KEY], "false");
      assert(log.has(/^I set label .*=false on CiliumNode .* \(was "true"\)/));
    });
  },
});

Deno.test({
  name: "reporter: unexpected rules set true, and a clean check sets false again",
  ...needs,
  async fn() {
    await withSetup({ labels: { [LABEL_KEY]: "false" } }, async ({ api, reporter }) => {
      const dirty = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(dirty.verdict, "true");
      assert.deepEqual(dirty.label, { kind: "written", previous: "false", value: "true" });
      assert.deepEqual(api.labels(NODE)?.[LABEL_KEY], "true");
      const clean = await reporter.reportCheck(CLEAN, BUDGET);
      assert.deepEqual(clean.label, { kind: "written", previous: "true", value: "false" });
      assert.deepEqual(api.labels(NODE)?.[LABEL_KEY], "false");
      assert.deepEqual(clean.event, undefined, "no Events without -events");
      assert.deepEqual(api.requests({ path: EVENTS_PATH }).length, 0);
    });
  },
});

Deno.test({
  name: "reporter: a missing CiliumNode is logged plainly and labelled once it appears",
  ...needs,
  async fn() {
    await withSetup({ seed: false }, async ({ api, reporter, log }) => {
      const first = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(first.label, { kind: "missing", name: NODE });
      assert(log.has(new RegExp(`^W CiliumNode ${NODE} does not exist .*next check`)));
      assert.deepEqual(api.requests({ method: "PATCH" }).length, 0);
      assert.deepEqual(api.requests({ method: "GET", path: CILIUM_PATH }).length, 1, "no retries");
      api.seedCiliumNode(NODE);
      const second = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(second.label, { kind: "written", previous: undefined, value: "true" });
      assert.deepEqual(api.labels(NODE)?.[LABEL_KEY], "true");
    });
  },
});

Deno.test({
  name: "reporter: fail closed: an incomplete check never writes false, but true still counts",
  ...needs,
  async fn() {
    const unreadable = ["ipv6 ip6tables-save: exit status 1"];
    const cases: Record<string, string>[] = [{}, { [LABEL_KEY]: "true" }];
    for (const labels of cases) {
      await withSetup({ labels }, async ({ api, reporter, log }) => {
        const report = await reporter.reportCheck({ unexpected: [], unreadable }, BUDGET);
        assert.deepEqual(report.verdict, "unknown");
        assert.deepEqual(report.label, { kind: "withheld", reasons: unreadable });
        assert.deepEqual(api.requests({ method: "PATCH" }).length, 0);
        assert.deepEqual(api.labels(NODE), labels);
        assert(log.has(/^W label .* left as it is: .*ip6tables-save: exit status 1/));
      });
    }
    await withSetup({ labels: { [LABEL_KEY]: "false" } }, async ({ api, reporter }) => {
      const report = await reporter.reportCheck(
        { unexpected: DIRTY.unexpected, unreadable },
        BUDGET,
      );
      assert.deepEqual(report.label, { kind: "written", previous: "false", value: "true" });
      assert.deepEqual(api.labels(NODE)?.[LABEL_KEY], "true");
    });
  },
});

Deno.test({
  name: "reporter: a persisting condition updates one Event (count, lastTimestamp)",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter, clock, nodeUid }) => {
      const first = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(first.event?.kind, "created");
      for (let i = 0; i < 2; i++) {
        clock.time += 300_000;
        const again = await reporter.reportCheck(DIRTY, BUDGET);
        assert.deepEqual(again.event?.kind, "updated");
        assert.deepEqual(again.label.kind, "unchanged");
      }
      const events = api.events();
      assert.deepEqual(events.length, 1);
      const [event] = events;
      const start = Math.floor(Date.UTC(2025, 10, 26, 14, 0, 0) / 1000);
      assert.deepEqual(field(event, "metadata", "name"), `${NODE}.${start}`);
      assert.deepEqual(field(event, "metadata", "namespace"), "default");
      assert.deepEqual(field(event, "involvedObject"), {
        kind: "Node",
        apiVersion: "v1",
        name: NODE,
        uid: nodeUid,
      });
      assert.deepEqual(field(event, "source", "component"), "azure-iptables-monitor");
      assert.deepEqual(field(event, "type"), "Warning");
      assert.deepEqual(field(event, "reason"), UNEXPECTED_REASON);
      assert.deepEqual(field(event, "count"), 3);
      assert.deepEqual(field(event, "firstTimestamp"), "2025-11-26T14:00:00.000Z");
      assert.deepEqual(field(event, "lastTimestamp"), "2025-11-26T14:10:00Z");
      const message = String(field(event, "message"));
      assert.match(message, /^Node has unexpected iptables rules: 2 unexpected rules: /);
      assert.match(message, /\[ipv4 filter\] -A INPUT -s 1\.2\.3\.4\/32 -j DROP/);
      assert.deepEqual(api.requests({ method: "POST", path: EVENTS_PATH }).length, 1);
      const patches = api.requests({ method: "PATCH", path: EVENTS_PATH });
      assert.deepEqual(patches.length, 2);
      assert(patches.every((patch) => patch.contentType === "application/merge-patch+json"));
      assert.deepEqual(api.requests({ method: "GET", path: `/api/v1/nodes/${NODE}` }).length, 1);
    });
  },
});

Deno.test({
  name: "reporter: an Event gone from the server (TTL) is created afresh",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter, clock }) => {
      const first = await reporter.reportCheck(DIRTY, BUDGET);
      assert(first.event?.kind === "created");
      api.removeEvent("default", first.event.name);
      clock.time += 3_600_000;
      const second = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(second.event?.kind, "created");
      assert.deepEqual(api.events().length, 1);
      assert.deepEqual(field(api.events()[0], "count"), 1);
    });
  },
});

Deno.test({
  name: "reporter: becoming clean sends one Normal event and ends the warning's aggregation",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter, clock }) => {
      await reporter.reportCheck(DIRTY, BUDGET);
      clock.time += 60_000;
      const clean = await reporter.reportCheck(CLEAN, BUDGET);
      assert.deepEqual(clean.event?.kind, "created");
      assert.deepEqual(clean.event?.reason, RESOLVED_REASON);
      clock.time += 60_000;
      assert.deepEqual((await reporter.reportCheck(CLEAN, BUDGET)).event, undefined);
      clock.time += 60_000;
      const again = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(again.event?.kind, "created", "a new occurrence is a new Event");
      const byReason = api.events().map((event) => [field(event, "reason"), field(event, "type")]);
      assert.deepEqual(byReason, [
        [UNEXPECTED_REASON, "Warning"],
        [RESOLVED_REASON, "Normal"],
        [UNEXPECTED_REASON, "Warning"],
      ]);
    });
  },
});

Deno.test({
  name: "reporter: a node clean from the start sends no Event at all",
  ...needs,
  async fn() {
    await withSetup(
      { events: true, labels: { [LABEL_KEY]: "false" } },
      async ({ api, reporter }) => {
        for (let i = 0; i < 3; i++) await reporter.reportCheck(CLEAN, BUDGET);
        assert.deepEqual(api.requests({ path: EVENTS_PATH }).length, 0);
        assert.deepEqual(api.requests({ method: "PATCH" }).length, 0);
      },
    );
  },
});

Deno.test({
  name: "reporter: a warning from before a restart is resolved; a hand-set label is not",
  ...needs,
  async fn() {
    await withSetup(
      { events: true, labels: { [LABEL_KEY]: "true" } },
      async ({ api, reporter, clock }) => {
        const first = await reporter.reportCheck(CLEAN, BUDGET);
        assert.equal(first.event?.reason, RESOLVED_REASON, "the label said true at start");
        clock.time += 60_000;
        api.setLabel(NODE, LABEL_KEY, "true"); // someone sets it by hand on a clean node
        const later = await reporter.reportCheck(CLEAN, BUDGET);
        assert.equal(later.label.kind, "written", "the label is put back");
        assert.equal(later.event, undefined, "no warning was ours, so nothing is resolved");
        assert.equal(api.events().length, 1);
      },
    );
  },
});

Deno.test({
  name: "reporter: blocked writes make one BlockedIPTablesRule Event whose count rises",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter, clock }) => {
      assert.deepEqual((await reporter.reportBlocked(BUDGET))?.kind, "created");
      clock.time += 300_000;
      assert.deepEqual((await reporter.reportBlocked(BUDGET))?.kind, "updated");
      const events = api.events();
      assert.deepEqual(events.length, 1);
      assert.deepEqual(field(events[0], "reason"), BLOCKED_REASON);
      assert.deepEqual(field(events[0], "message"), BLOCKED_MESSAGE);
      assert.deepEqual(field(events[0], "count"), 2);
    });
    await withSetup({ events: false }, async ({ api, reporter }) => {
      assert.deepEqual(await reporter.reportBlocked(BUDGET), undefined);
      assert.deepEqual(api.requests().length, 0);
    });
  },
});

Deno.test({
  name: "reporter: an Event message stays within 1 KiB however many rules are unexpected",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter }) => {
      const unexpected = Array.from(
        { length: 100 },
        (_, i) =>
          rule(`-A INPUT -s 10.0.${i}.0/24 -m comment --comment "${"é".repeat(200)}" -j DROP`),
      );
      const report = await reporter.reportCheck({ unexpected, unreadable: [] }, BUDGET);
      assert.deepEqual(report.event?.kind, "created");
      const message = String(field(api.events()[0], "message"));
      assert(new TextEncoder().encode(message).length <= 1024);
      assert.match(message, /^Node has unexpected iptables rules: 100 unexpected rules: /);
      assert.match(message, /and \d+ more$/);
    });
  },
});

Deno.test({
  name: "reporter: 403 names the verb and resource RBAC lacks, and nothing throws",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter, log }) => {
      api.inject({ kind: "status", status: 403 }, { method: "PATCH", path: CILIUM_PATH });
      api.inject({ kind: "status", status: 403 }, { method: "POST", path: EVENTS_PATH });
      const report = await reporter.reportCheck(DIRTY, BUDGET);
      assert(report.label.kind === "failed");
      assert.match(report.label.message, /patch ciliumnodes\.cilium\.io ".*": forbidden \(403\)/);
      assert.match(
        report.label.message,
        /verb "patch" on resource "ciliumnodes" in API group "cilium\.io" cluster-wide/,
      );
      assert(report.event?.kind === "failed");
      assert.match(
        report.event.message,
        /verb "create" on resource "events" in the core API group in namespace "default"/,
      );
      assert.deepEqual(api.requests({ method: "PATCH" }).length, 1, "403 is not retried");
      assert(log.has(/^E label .* not updated: .*forbidden/));
    });
  },
});

Deno.test({
  name: "reporter: 429 with Retry-After is retried after the time the server asked for",
  ...needs,
  async fn() {
    await withSetup({}, async ({ api, reporter, clock }) => {
      api.inject({ kind: "status", status: 429, retryAfter: "3" }, { path: CILIUM_PATH, times: 2 });
      const report = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(report.label, { kind: "written", previous: undefined, value: "true" });
      assert.deepEqual(api.requests({ method: "GET", path: CILIUM_PATH }).length, 3);
      assert.deepEqual(clock.sleeps.length, 2);
      assert(clock.sleeps.every((ms) => ms >= 3000), `slept ${clock.sleeps}`);
    });
  },
});

Deno.test({
  name: "reporter: a Retry-After beyond the budget gives up at once with a clear message",
  ...needs,
  async fn() {
    await withSetup({}, async ({ api, reporter, clock }) => {
      api.inject({ kind: "status", status: 429, retryAfter: "120" }, { path: CILIUM_PATH });
      const report = await reporter.reportCheck(DIRTY, { budgetMs: 30_000 });
      assert(report.label.kind === "failed");
      assert.match(report.label.message, /HTTP 429.*asked to retry after 120 s/);
      assert.deepEqual(clock.sleeps.length, 0);
      assert.deepEqual(api.requests().length, 1);
    });
  },
});

Deno.test({
  name: "reporter: 503 for a while, then recovery; a spent budget is a result, not a crash",
  ...needs,
  async fn() {
    await withSetup({}, async ({ api, reporter }) => {
      api.inject({ kind: "status", status: 503 }, { times: 3 });
      const report = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(report.label.kind, "written");
      assert.deepEqual(api.requests().filter((r) => r.status === 503).length, 3);
    });
    await withSetup({}, async ({ api, reporter }) => {
      api.inject({ kind: "status", status: 500 });
      const failed = await reporter.reportCheck(DIRTY, { budgetMs: 10_000 });
      assert(failed.label.kind === "failed");
      assert.match(failed.label.message, /HTTP 500.*attempts; no time left in this check/);
      api.clearFaults();
      const recovered = await reporter.reportCheck(DIRTY, { budgetMs: 10_000 });
      assert.deepEqual(recovered.label.kind, "written");
      assert.deepEqual(api.labels(NODE)?.[LABEL_KEY], "true");
    });
  },
});

Deno.test({
  name: "reporter: a reply slower than 5 s times out, and the retry succeeds",
  ...needs,
  async fn() {
    await withSetup({}, async ({ api, reporter, log }) => {
      api.inject({ kind: "slow", delayMs: 30_000 }, { path: CILIUM_PATH, times: 1 });
      const started = performance.now();
      const report = await reporter.reportCheck(DIRTY, BUDGET);
      const elapsed = performance.now() - started;
      assert.deepEqual(report.label.kind, "written");
      assert(log.has(/get ciliumnodes\.cilium\.io ".*": no answer within 5 s; retrying/));
      // Ended by the client's timeout: not before 5 s, long before the slow reply.
      assert.ok(elapsed >= 4_900, `ended after ${elapsed} ms`);
      assert.ok(elapsed < 20_000, `ended after ${elapsed} ms`);
    });
  },
});

Deno.test({
  name: "reporter: a dropped connection is retried",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter, log }) => {
      api.inject({ kind: "drop" }, { method: "PATCH", path: CILIUM_PATH, times: 1 });
      api.inject({ kind: "drop" }, { method: "POST", times: 1 });
      const report = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(report.label.kind, "written");
      assert.deepEqual(report.event?.kind, "created");
      assert.deepEqual(api.requests({ method: "PATCH", path: CILIUM_PATH }).length, 2);
      assert.deepEqual(api.events().length, 1);
      assert(log.has(/patch ciliumnodes.*connection failed/));
    });
  },
});

Deno.test({
  name: "reporter: an Event created by a create whose reply was lost is not created twice",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter, clock }) => {
      api.inject({ kind: "drop", afterServing: true }, { method: "POST", times: 1 });
      const first = await reporter.reportCheck(DIRTY, BUDGET);
      assert.deepEqual(first.event?.kind, "created");
      assert.deepEqual(api.requests({ method: "POST" }).map((r) => r.status), [undefined, 409]);
      clock.time += 300_000;
      assert.deepEqual((await reporter.reportCheck(DIRTY, BUDGET)).event?.kind, "updated");
      assert.deepEqual(api.events().length, 1);
      assert.deepEqual(field(api.events()[0], "count"), 2);
    });
  },
});

Deno.test({
  name: "reporter: an Event name already taken is answered with the next name",
  ...needs,
  async fn() {
    await withSetup({ events: true }, async ({ api, reporter }) => {
      api.inject({ kind: "status", status: 409 }, { method: "POST", times: 1 });
      const report = await reporter.reportCheck(DIRTY, BUDGET);
      assert(report.event?.kind === "created");
      const start = Math.floor(Date.UTC(2025, 10, 26, 14, 0, 0) / 1000);
      assert.deepEqual(report.event.name, `${NODE}.${start + 1}`);
    });
  },
});

Deno.test({
  name: "reporter: shutdown stops retrying without waiting out the budget",
  ...needs,
  async fn() {
    await withSetup({}, async ({ api, reporter }) => {
      api.inject({ kind: "status", status: 503 });
      const controller = new AbortController();
      controller.abort();
      const report = await reporter.reportCheck(DIRTY, {
        budgetMs: 60_000,
        signal: controller.signal,
      });
      assert(report.label.kind === "failed");
      assert.match(report.label.message, /shutting down/);
      assert.deepEqual(api.requests().length, 1);
    });
  },
});
