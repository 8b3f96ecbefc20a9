/** The pure parts of the Kubernetes edge: verdicts, messages, retry decisions. */

import assert from "node:assert/strict";
import type { Clock } from "../src/kube/clock.ts";
import { type ApiRequest, KubeApiError, parseRetryAfter } from "../src/kube/errors.ts";
import { verdictOf } from "../src/kube/label.ts";
import type { KubeLogger } from "../src/kube/logger.ts";
import {
  EVENT_MESSAGE_LIMIT,
  truncateBytes,
  UNEXPECTED_MESSAGE,
  type UnexpectedRule,
  unexpectedRulesMessage,
} from "../src/kube/messages.ts";
import { backoffMs, withRetries } from "../src/kube/retry.ts";
import { summaryOf } from "../src/kube/summary.ts";

const bytes = (text: string) => new TextEncoder().encode(text).length;

const silent: KubeLogger = {
  info() {},
  warning() {},
  error() {},
  v: () => ({ info() {} }),
};

class FakeClock implements Clock {
  time = 0;
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

const REQUEST: ApiRequest = { verb: "get", resource: "ciliumnodes", group: "cilium.io", name: "n" };

function statusError(status: number, retryAfterMs?: number): KubeApiError {
  return new KubeApiError(REQUEST, "status", `HTTP ${status}`, status, retryAfterMs);
}

function rules(count: number, text: (i: number) => string): UnexpectedRule[] {
  return Array.from({ length: count }, (_, i) => ({
    family: "ipv6" as const,
    table: "nat",
    chain: "PREROUTING",
    rule: text(i),
  }));
}

Deno.test("verdict: unexpected rules win, an incomplete check is unknown, else false", () => {
  const one = rules(1, () => "-A X -j DROP");
  assert.equal(verdictOf({ unexpected: one, unreadable: ["ipv4: failed"] }), "true");
  assert.equal(verdictOf({ unexpected: [], unreadable: ["ipv4: failed"] }), "unknown");
  assert.equal(verdictOf({ unexpected: [], unreadable: [] }), "false");
});

Deno.test("summary: flattens a check report; pattern errors do not make it incomplete", () => {
  const summary = summaryOf({
    families: [{
      family: "ipv4",
      tables: [
        { table: "filter", unexpected: [{ chain: "INPUT", rule: "-A INPUT -j DROP" }] },
        { table: "nat", unexpected: [] },
      ],
    }],
    errors: [
      { kind: "pattern", family: "ipv4", file: "/etc/config/nat", message: "bad pattern" },
      { kind: "iptables", family: "ipv6", source: "ip6tables-save", message: "exit status 1" },
    ],
  });
  assert.deepEqual(summary.unexpected, [
    { family: "ipv4", table: "filter", chain: "INPUT", rule: "-A INPUT -j DROP" },
  ]);
  assert.deepEqual(summary.unreadable, ["ipv6 ip6tables-save: exit status 1"]);
});

Deno.test("message: counts the rules and lists the first few", () => {
  assert.equal(
    unexpectedRulesMessage(rules(1, () => "-A PREROUTING -j DNAT --to 1.2.3.4")),
    `${UNEXPECTED_MESSAGE}: 1 unexpected rule: [ipv6 nat] -A PREROUTING -j DNAT --to 1.2.3.4`,
  );
  const seven = unexpectedRulesMessage(rules(7, (i) => `-A PREROUTING -s 10.0.0.${i} -j DROP`));
  assert.match(seven, /^Node has unexpected iptables rules: 7 unexpected rules: \[ipv6 nat\] /);
  assert.match(seven, /10\.0\.0\.4 -j DROP; and 2 more$/);
  assert.doesNotMatch(seven, /10\.0\.0\.5/);
  assert.equal(unexpectedRulesMessage([]), UNEXPECTED_MESSAGE);
});

Deno.test("message: control characters and bidi overrides in rule text are escaped", () => {
  const message = unexpectedRulesMessage(
    rules(1, () => '-A INPUT -m comment --comment "a\nb\u202ec\x1b[2J" -j ACCEPT'),
    "hint: last change from PID 7 (evil\rname)",
  );
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(message, /[\u0000-\u001f\u202e]/);
  assert.match(message, /a\\nb\\u202ec\\x1b\[2J/);
  assert.match(message, /evil\\rname/);
});

Deno.test("message: never over 1 KiB, multi-byte text included", () => {
  for (const length of [10, 300, 5000]) {
    for (const count of [1, 3, 50, 10_000]) {
      const message = unexpectedRulesMessage(
        rules(count, (i) => `-A X -m comment --comment "${"日本".repeat(length)}${i}"`),
      );
      assert.ok(bytes(message) <= EVENT_MESSAGE_LIMIT, `${bytes(message)} bytes`);
      assert.ok(message.includes(`${count === 1 ? "1 unexpected rule" : `${count} unexpected`}`));
      assert.ok(!message.includes("\uFFFD"), "no broken characters");
    }
  }
});

Deno.test("truncateBytes: cuts on character boundaries and marks the cut", () => {
  assert.equal(truncateBytes("short", 10), "short");
  const cut = truncateBytes("ééééé", 6);
  assert.equal(cut, "é…");
  assert.ok(bytes(cut) <= 6);
});

Deno.test("Retry-After: seconds or an HTTP date", () => {
  const now = Date.UTC(2025, 0, 1, 0, 0, 0);
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter("Wed, 01 Jan 2025 00:00:10 GMT", now), 10_000);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

Deno.test("backoff: doubles from 0.5 s with jitter, capped at 30 s", () => {
  assert.equal(backoffMs(0, () => 0.5), 500);
  assert.equal(backoffMs(3, () => 0.5), 4000);
  assert.equal(backoffMs(20, () => 0.5), 30_000);
  assert.ok(backoffMs(1, () => 0) >= 800 && backoffMs(1, () => 1) <= 1200);
});

Deno.test("retries: 4xx other than 429 fails at once; 5xx is retried until it works", async () => {
  const clock = new FakeClock();
  let calls = 0;
  await assert.rejects(
    withRetries(
      () => {
        calls++;
        return Promise.reject(statusError(404));
      },
      { deadline: 60_000 },
      clock,
      silent,
    ),
    /HTTP 404/,
  );
  assert.equal(calls, 1);
  calls = 0;
  const value = await withRetries(
    () => {
      calls++;
      return calls < 4 ? Promise.reject(statusError(503)) : Promise.resolve("ok");
    },
    { deadline: 60_000 },
    clock,
    silent,
  );
  assert.equal(value, "ok");
  assert.equal(calls, 4);
  assert.equal(clock.sleeps.length, 3);
  assert.ok(clock.sleeps[2] > clock.sleeps[0], `backoff grows: ${clock.sleeps}`);
});

Deno.test("retries: stop when the budget is spent, saying how many attempts were made", async () => {
  const clock = new FakeClock();
  let calls = 0;
  await assert.rejects(
    withRetries(
      () => {
        calls++;
        return Promise.reject(statusError(500));
      },
      { deadline: 5_000 },
      clock,
      silent,
    ),
    (error: unknown) =>
      error instanceof KubeApiError &&
      new RegExp(`^HTTP 500 \\(${calls} attempts; no time left in this check\\)$`).test(
        error.message,
      ),
  );
  assert.ok(calls >= 3 && calls <= 5, `${calls} calls`);
  assert.ok(clock.time <= 5_000);
});

Deno.test("retries: Retry-After is honoured, never shortened by the backoff", async () => {
  const clock = new FakeClock();
  let calls = 0;
  await withRetries(
    () => {
      calls++;
      return calls === 1 ? Promise.reject(statusError(429, 12_000)) : Promise.resolve(1);
    },
    { deadline: 60_000 },
    clock,
    silent,
  );
  assert.deepEqual(clock.sleeps, [12_000]);
});
