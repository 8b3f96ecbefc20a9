/**
 * The metrics server over real HTTP: the exposition format parsed strictly, the values a
 * check leaves behind, and `/healthz` turning unhealthy after three intervals without a
 * completed check (with an injected clock).
 */

import assert from "node:assert/strict";
import type { CheckReport } from "../src/check.ts";
import { VERSION } from "../src/cli/config.ts";
import { Metrics, METRICS_CONTENT_TYPE } from "../src/metrics.ts";
import { healthOf, parseListenAddress, startMetricsServer } from "../src/metrics_server.ts";

/** One sample line of the exposition format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A scrape: the declared type and help of each metric, and every sample. */
interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$/;

function unescapeHelp(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

/** Reads a label set `{a="x",b="y"}` starting at `text[0] === "{"`; returns it and the rest. */
function parseLabels(text: string, line: number): [Record<string, string>, string] {
  const labels: Record<string, string> = {};
  let rest = text.slice(1);
  while (!rest.startsWith("}")) {
    const name = LABEL.exec(rest)?.[0];
    if (name === undefined) throw new Error(`line ${line}: bad label name in ${text}`);
    if (name in labels) throw new Error(`line ${line}: label ${name} repeated`);
    rest = rest.slice(name.length);
    if (!rest.startsWith('="')) throw new Error(`line ${line}: expected =" after ${name}`);
    rest = rest.slice(2);
    let value = "";
    for (;;) {
      const c = rest[0];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      rest = rest.slice(1);
      if (c === '"') break;
      if (c === "\\") {
        const escaped = rest[0];
        rest = rest.slice(1);
        if (escaped === "n") value += "\n";
        else if (escaped === "\\" || escaped === '"') value += escaped;
        else throw new Error(`line ${line}: bad escape \\${escaped}`);
      } else {
        if (c === "\n") throw new Error(`line ${line}: raw newline in a label value`);
        value += c;
      }
    }
    labels[name] = value;
    if (rest.startsWith(",")) rest = rest.slice(1);
    else if (!rest.startsWith("}")) throw new Error(`line ${line}: expected , or } in ${text}`);
  }
  return [labels, rest.slice(1)];
}

/**
 * A strict reader of the text format as Prometheus 0.0.4 defines it: every sample's metric
 * declared by a TYPE line before it, no series twice, names and values well formed.
 */
function parseExposition(body: string): Exposition {
  assert.ok(body.endsWith("\n"), "the exposition ends with a newline");
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  body.slice(0, -1).split("\n").forEach((text, index) => {
    const line = index + 1;
    if (text === "") throw new Error(`line ${line}: empty line`);
    if (text.startsWith("#")) {
      const match = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(text);
      if (match === null) throw new Error(`line ${line}: bad comment ${text}`);
      const [, kind, name, rest] = match;
      if (kind === "HELP") {
        if (help.has(name)) throw new Error(`line ${line}: second HELP for ${name}`);
        help.set(name, unescapeHelp(rest));
      } else {
        if (types.has(name)) throw new Error(`line ${line}: second TYPE for ${name}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) {
          throw new Error(`line ${line}: unknown type ${rest}`);
        }
        types.set(name, rest);
      }
      return;
    }
    const name = NAME.exec(text)?.[0];
    if (name === undefined) throw new Error(`line ${line}: bad metric name in ${text}`);
    if (!types.has(name)) throw new Error(`line ${line}: ${name} has no TYPE line before it`);
    let rest = text.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) [labels, rest] = parseLabels(rest, line);
    const parts = rest.split(" ");
    if (parts[0] !== "" || parts.length < 2 || parts.length > 3) {
      throw new Error(`line ${line}: expected " value [timestamp]" in ${text}`);
    }
    if (!FLOAT.test(parts[1])) throw new Error(`line ${line}: bad value ${parts[1]}`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(series)) throw new Error(`line ${line}: series ${series} repeated`);
    seen.add(series);
    const value = parts[1] === "+Inf"
      ? Infinity
      : parts[1] === "-Inf"
      ? -Infinity
      : Number(parts[1]);
    samples.push({ name, labels, value });
  });
  return { types, help, samples };
}

function valueOf(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  return exposition.samples.find((sample) =>
    sample.name === name && JSON.stringify(Object.entries(sample.labels).sort()) === wanted
  )?.value;
}

const P = "azure_iptables_monitor_";

/** A report with two backends of IPv4, one table with an unexpected rule, errors of two kinds. */
const REPORT: CheckReport = {
  node: "aks-nodepool1-0",
  verdict: "true",
  families: [
    {
      family: "ipv4",
      source: "iptables-nft-save (nf_tables)",
      tables: [
        {
          table: "filter",
          rules: 12,
          unexpected: [{ chain: "INPUT", rule: "-A INPUT -s 1.2.3.4/32 -j DROP" }],
        },
        { table: "nat", rules: 40, unexpected: [] },
      ],
    },
    {
      family: "ipv4",
      source: "iptables-legacy-save (legacy)",
      tables: [{ table: "filter", rules: 3, unexpected: [] }],
    },
  ],
  errors: [
    { kind: "pattern", family: "ipv4", file: "/etc/config/nat", line: 3, message: "bad" },
    { kind: "pattern", family: "ipv4", file: "/etc/config/nat", line: 4, message: "bad" },
    { kind: "iptables", family: "ipv6", source: "ip6tables-nft-save", message: "failed" },
  ],
};

/** A controllable clock. */
function clock(start: Date): { now: () => Date; advance(seconds: number): void } {
  let time = start.getTime();
  return {
    now: () => new Date(time),
    advance(seconds) {
      time += seconds * 1000;
    },
  };
}

async function get(port: number, path: string, method = "GET") {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    body: await response.text(),
  };
}

Deno.test("a scrape over HTTP parses as the exposition format and holds the last check", async () => {
  const metrics = new Metrics();
  const server = startMetricsServer("127.0.0.1:0", metrics, { intervalSeconds: 300 });
  try {
    assert.ok(server.port > 0);
    const before = parseExposition((await get(server.port, "/metrics")).body);
    assert.equal(valueOf(before, `${P}build_info`, { version: VERSION }), 1);
    assert.equal(valueOf(before, `${P}checks_total`), 0);
    for (const verdict of ["true", "false", "unknown"]) {
      assert.equal(valueOf(before, `${P}verdict`, { verdict }), 0);
    }
    for (const kind of ["pattern", "allowlist", "iptables", "rules-file"]) {
      assert.equal(valueOf(before, `${P}check_errors_total`, { kind }), 0, kind);
    }

    const done = new Date(Date.UTC(2025, 10, 26, 14, 0, 0));
    metrics.recordCheck(REPORT, 1234, done);
    metrics.recordApiRequest("get", "ciliumnodes", "200");
    metrics.recordApiRequest("get", "ciliumnodes", "200");
    metrics.recordApiRequest("patch", "ciliumnodes", "timeout");
    metrics.setBpfCounter(42n);

    const scrape = await get(server.port, "/metrics");
    assert.equal(scrape.status, 200);
    assert.equal(scrape.type, METRICS_CONTENT_TYPE);
    const after = parseExposition(scrape.body);
    const nft = { family: "ipv4", source: "iptables-nft-save (nf_tables)" };
    assert.equal(valueOf(after, `${P}rules`, { ...nft, table: "filter" }), 12);
    assert.equal(valueOf(after, `${P}rules`, { ...nft, table: "nat" }), 40);
    assert.equal(valueOf(after, `${P}unexpected_rules`, { ...nft, table: "filter" }), 1);
    assert.equal(valueOf(after, `${P}unexpected_rules`, { ...nft, table: "nat" }), 0);
    const legacy = { family: "ipv4", source: "iptables-legacy-save (legacy)", table: "filter" };
    assert.equal(valueOf(after, `${P}rules`, legacy), 3);
    assert.equal(valueOf(after, `${P}verdict`, { verdict: "true" }), 1);
    assert.equal(valueOf(after, `${P}verdict`, { verdict: "false" }), 0);
    assert.equal(valueOf(after, `${P}verdict`, { verdict: "unknown" }), 0);
    assert.equal(valueOf(after, `${P}last_check_timestamp_seconds`), done.getTime() / 1000);
    assert.equal(valueOf(after, `${P}last_check_duration_seconds`), 1.234);
    assert.equal(valueOf(after, `${P}checks_total`), 1);
    assert.equal(valueOf(after, `${P}check_errors_total`, { kind: "pattern" }), 2);
    assert.equal(valueOf(after, `${P}check_errors_total`, { kind: "iptables" }), 1);
    assert.equal(valueOf(after, `${P}check_errors_total`, { kind: "allowlist" }), 0);
    const api = (verb: string, result: string) =>
      valueOf(after, `${P}api_requests_total`, { verb, resource: "ciliumnodes", result });
    assert.equal(api("get", "200"), 2);
    assert.equal(api("patch", "timeout"), 1);
    assert.equal(valueOf(after, `${P}bpf_blocked_iptables_writes`), 42);

    assert.equal(after.types.get(`${P}checks_total`), "counter");
    assert.equal(after.types.get(`${P}api_requests_total`), "counter");
    assert.equal(after.types.get(`${P}check_errors_total`), "counter");
    assert.equal(after.types.get(`${P}rules`), "gauge");
    assert.equal(after.types.get(`${P}verdict`), "gauge");
    for (const name of after.types.keys()) {
      assert.ok(name.startsWith(P), name);
      assert.ok(after.help.get(name)?.length, `${name} has help text`);
      if (after.types.get(name) === "counter") assert.ok(name.endsWith("_total"), name);
    }
  } finally {
    await server.close();
  }
});

Deno.test("a later check replaces the per-table gauges and adds to the counters", () => {
  const metrics = new Metrics();
  metrics.recordCheck(REPORT, 10, new Date(1000));
  metrics.recordCheck(
    {
      node: null,
      verdict: "false",
      families: [{
        family: "ipv4",
        source: "iptables-nft-save (nf_tables)",
        tables: [{ table: "filter", rules: 11, unexpected: [] }],
      }],
      errors: [{ kind: "pattern", family: "ipv4", file: "/etc/config/nat", line: 3, message: "x" }],
    },
    20,
    new Date(2000),
  );
  const scrape = parseExposition(metrics.render());
  const nft = { family: "ipv4", source: "iptables-nft-save (nf_tables)" };
  assert.equal(valueOf(scrape, `${P}rules`, { ...nft, table: "filter" }), 11);
  assert.equal(valueOf(scrape, `${P}rules`, { ...nft, table: "nat" }), undefined, "nat is gone");
  const legacy = { family: "ipv4", source: "iptables-legacy-save (legacy)", table: "filter" };
  assert.equal(valueOf(scrape, `${P}rules`, legacy), undefined, "the legacy backend is gone");
  assert.equal(valueOf(scrape, `${P}verdict`, { verdict: "false" }), 1);
  assert.equal(valueOf(scrape, `${P}verdict`, { verdict: "true" }), 0);
  assert.equal(valueOf(scrape, `${P}checks_total`), 2);
  assert.equal(valueOf(scrape, `${P}check_errors_total`, { kind: "pattern" }), 3);
  assert.equal(valueOf(scrape, `${P}last_check_timestamp_seconds`), 2);
  assert.equal(metrics.lastCheckAt?.getTime(), 2000);
});

Deno.test("label values with quotes, backslashes and newlines survive the round trip", () => {
  const metrics = new Metrics();
  const source = 'file /tmp/a "b"\\c\nd';
  metrics.recordCheck(
    {
      node: null,
      verdict: "false",
      families: [{ family: "ipv6", source, tables: [{ table: "raw", rules: 5, unexpected: [] }] }],
      errors: [],
    },
    1,
    new Date(0),
  );
  metrics.recordApiRequest('we"ird', "x\\y", "a\nb");
  const text = metrics.render();
  assert.ok(!text.includes('"b"'), "quotes are escaped");
  const scrape = parseExposition(text);
  assert.equal(valueOf(scrape, `${P}rules`, { family: "ipv6", source, table: "raw" }), 5);
  assert.equal(
    valueOf(scrape, `${P}api_requests_total`, { verb: 'we"ird', resource: "x\\y", result: "a\nb" }),
    1,
  );
});

Deno.test("the strict parser rejects what Prometheus would reject", () => {
  const bad = [
    "x 1\n", // no TYPE
    '# TYPE x gauge\nx{a="1"} one\n', // bad value
    '# TYPE x gauge\nx{a="1",a="2"} 1\n', // repeated label
    '# TYPE x gauge\nx{a="\\q"} 1\n', // bad escape
    "# TYPE x gauge\nx 1\nx 2\n", // repeated series
    "# TYPE x gauge\n# TYPE x counter\nx 1\n", // second TYPE
    "# TYPE x gauge\nx 1", // no final newline
  ];
  for (const text of bad) assert.throws(() => parseExposition(text), Error, text);
  const good = parseExposition('# HELP x a\\nb\n# TYPE x gauge\nx{a="q\\"r"} -Inf\nx 1.5e3 17\n');
  assert.equal(good.help.get("x"), "a\nb");
  assert.equal(valueOf(good, "x", { a: 'q"r' }), -Infinity);
  assert.equal(valueOf(good, "x"), 1500);
});

Deno.test("/healthz fails after three intervals without a completed check", async () => {
  const time = clock(new Date(Date.UTC(2025, 10, 26, 14, 0, 0)));
  const metrics = new Metrics();
  const server = startMetricsServer("127.0.0.1:0", metrics, {
    intervalSeconds: 10,
    now: time.now,
  });
  try {
    let health = await get(server.port, "/healthz");
    assert.equal(health.status, 200, "healthy at the start, before the first check");
    assert.match(health.body, /^ok: started 0s ago, first check not completed yet\n$/);

    time.advance(30);
    assert.equal((await get(server.port, "/healthz")).status, 200, "exactly three intervals");
    time.advance(1);
    health = await get(server.port, "/healthz");
    assert.equal(health.status, 503);
    assert.match(health.body, /no check completed within 30s \(3 intervals of 10s\)/);
    assert.match(health.body, /none since the start 31s ago/);

    metrics.recordCheck(REPORT, 5, time.now());
    health = await get(server.port, "/healthz");
    assert.equal(health.status, 200, "a completed check makes it healthy again");
    assert.match(health.body, /^ok: last check completed 0s ago\n$/);

    time.advance(29);
    assert.equal((await get(server.port, "/healthz")).status, 200);
    time.advance(2);
    health = await get(server.port, "/healthz");
    assert.equal(health.status, 503);
    assert.match(health.body, /the last one 31s ago/);
    assert.equal(health.type, "text/plain; charset=utf-8");
  } finally {
    await server.close();
  }
});

Deno.test("other paths and methods are refused; HEAD works", async () => {
  const server = startMetricsServer("127.0.0.1:0", new Metrics(), { intervalSeconds: 300 });
  try {
    assert.equal((await get(server.port, "/")).status, 404);
    assert.equal((await get(server.port, "/metrics", "POST")).status, 405);
    const head = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "HEAD" });
    await head.body?.cancel();
    assert.equal(head.status, 200);
  } finally {
    await server.close();
  }
});

Deno.test("a taken port is one clear error", async () => {
  const first = startMetricsServer("127.0.0.1:0", new Metrics(), { intervalSeconds: 300 });
  try {
    assert.throws(
      () => startMetricsServer(`127.0.0.1:${first.port}`, new Metrics(), { intervalSeconds: 300 }),
      new RegExp(`^Error: cannot serve metrics on 127\\.0\\.0\\.1:${first.port}: .*in use`),
    );
  } finally {
    await first.close();
  }
});

Deno.test("-metricsAddress forms: :port, host:port, [v6]:port", () => {
  assert.deepEqual(parseListenAddress(":9090"), { hostname: "0.0.0.0", port: 9090 });
  assert.deepEqual(parseListenAddress("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(parseListenAddress("[::1]:9090"), { hostname: "::1", port: 9090 });
  assert.deepEqual(parseListenAddress("localhost:80"), { hostname: "localhost", port: 80 });
  assert.throws(() => parseListenAddress("9090"), /must be host:port/);
  assert.throws(() => parseListenAddress("::1:9090"), /\[addr\]:port/);
  assert.throws(() => parseListenAddress(":70000"), /must be host:port/);
});

Deno.test("health counts from the start until the first check", () => {
  const start = new Date(0);
  assert.equal(healthOf(undefined, start, 300, new Date(900_000)).healthy, true);
  assert.equal(healthOf(undefined, start, 300, new Date(900_001)).healthy, false);
  assert.equal(healthOf(new Date(800_000), start, 300, new Date(1_700_000)).healthy, true);
  assert.equal(healthOf(new Date(800_000), start, 300, new Date(1_700_001)).healthy, false);
});
