/**
 * The metrics port under hostile clients: idle connections, half-sent headers, clients
 * that send one byte at a time, requests over the limits, and a flood of all of them at
 * the real daemon running with few file descriptors (`prlimit --nofile`). Deadlines are
 * shortened for the in-process tests; the daemon runs with the documented defaults.
 * All traffic stays on loopback; every socket and process is closed at the end.
 */

import assert from "node:assert/strict";
import { monitorArgs, ROOT } from "./_support/cli.ts";
import { delay, lastLines } from "./_support/daemon.ts";
import { ApiFixture } from "./_support/api_fixture.ts";
import { requires } from "./_support/requires.ts";
import { DEFAULT_LIMITS, type HttpLimits, parseHead, startHttpServer } from "../src/http_server.ts";
import { Metrics } from "../src/metrics.ts";
import { startMetricsServer } from "../src/metrics_server.ts";

const encoder = new TextEncoder();
const LABEL = "kubernetes.azure.com/user-iptables-rules";

/** Reads until the server closes the connection; resolves with everything it sent. */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(65536);
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const read = await conn.read(buffer);
      if (read === null) break;
      chunks.push(decoder.decode(buffer.subarray(0, read), { stream: true }));
    }
  } catch {
    // reset by the server: closed too
  }
  return chunks.join("");
}

/** Milliseconds until the server closes `conn`, or Infinity past `limitMs`. */
async function closedWithin(conn: Deno.Conn, limitMs: number): Promise<number> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), limitMs));
  const result = await Promise.race([readToEnd(conn), late]);
  clearTimeout(timer);
  return result === "late" ? Infinity : performance.now() - started;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}

async function request(port: number, raw: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(raw));
    return await readToEnd(conn);
  } finally {
    closeQuietly(conn);
  }
}

const FAST: Partial<HttpLimits> = { headerTimeoutMs: 400, idleTimeoutMs: 700, maxConnections: 8 };

function serve(limits: Partial<HttpLimits> = FAST, warnings: string[] = []) {
  return startMetricsServer("127.0.0.1:0", new Metrics(), {
    intervalSeconds: 300,
    limits,
    warn: (line) => warnings.push(line),
  });
}

Deno.test("metrics port: idle, half-sent and byte-at-a-time requests are cut at the header deadline", async () => {
  const server = serve();
  const conns: Deno.Conn[] = [];
  try {
    const connect = async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      conns.push(conn);
      return conn;
    };
    const idle = await connect();
    const half = await connect();
    await half.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    const slow = await connect();
    let dripping = true;
    const drip = (async () => {
      for (const byte of encoder.encode("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ")) {
        if (!dripping) return;
        await slow.write(new Uint8Array([byte])).catch(() => (dripping = false));
        await delay(50);
      }
      while (dripping) {
        await slow.write(encoder.encode("a")).catch(() => (dripping = false));
        await delay(50);
      }
    })();
    const times = await Promise.all([idle, half, slow].map((conn) => closedWithin(conn, 3000)));
    dripping = false;
    await drip;
    for (const [what, ms] of [["idle", times[0]], ["half-sent", times[1]], ["slow", times[2]]]) {
      assert.ok(
        Number(ms) >= 300 && Number(ms) < 400 + 1500,
        `${what} connection closed after ${ms} ms; the header deadline is 400 ms`,
      );
    }
  } finally {
    conns.forEach(closeQuietly);
    await server.close();
  }
});

Deno.test("metrics port: a kept-alive connection is closed after the idle timeout", async () => {
  const server = serve();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    const buffer = new Uint8Array(4096);
    const read = await conn.read(buffer);
    const head = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /connection: keep-alive/);
    // A second request on the same connection is served (pipelining too).
    await conn.write(
      encoder.encode("GET /healthz HTTP/1.1\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\n"),
    );
    await delay(100);
    const ms = await closedWithin(conn, 3000);
    assert.ok(
      ms >= 500 && ms < 700 + 1500,
      `closed ${ms} ms after the last answer; idle is 700 ms`,
    );
  } finally {
    closeQuietly(conn);
    await server.close();
  }
});

Deno.test("metrics port: methods, bodies, long targets and big heads are refused", async () => {
  const server = serve();
  try {
    const cases: [string, RegExp][] = [
      ["POST /metrics HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 405 .*\r\nallow: GET, HEAD/s],
      ["GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", /^HTTP\/1\.1 413 /],
      ["GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", /^HTTP\/1\.1 413 /],
      [`GET /${"a".repeat(2000)} HTTP/1.1\r\n\r\n`, /^HTTP\/1\.1 414 /],
      [`GET /metrics HTTP/1.1\r\nX: ${"b".repeat(9000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["GET /metrics SPDY/3\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["GET /nope HTTP/1.0\r\n\r\n", /^HTTP\/1\.1 404 .*connection: close/s],
    ];
    for (const [raw, expected] of cases) {
      const answer = await request(server.port, raw);
      assert.match(answer, expected, JSON.stringify(raw.slice(0, 40)));
      assert.match(answer, /connection: close/, "an error ends the connection");
    }
    const metrics = await request(
      server.port,
      "GET /metrics?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert.match(metrics, /^HTTP\/1\.1 200 OK\r\n.*\r\n\r\n# HELP /s);
    const head = await request(server.port, "HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n.*content-length: \d+\r\n/s);
    assert.doesNotMatch(head, /\r\n\r\nok/, "HEAD has no body");
  } finally {
    await server.close();
  }
});

Deno.test("request heads: the parser's verdicts", () => {
  const limits = { maxTargetBytes: 16 };
  assert.deepEqual(parseHead("GET /metrics HTTP/1.1", limits), {
    ok: true,
    request: { method: "GET", path: "/metrics" },
    keepAlive: true,
  });
  const closeIt = parseHead("GET /a?b HTTP/1.1\r\nConnection: Close", limits);
  assert.ok(closeIt.ok && !closeIt.keepAlive && closeIt.request.path === "/a");
  const old = parseHead("HEAD / HTTP/1.0", limits);
  assert.ok(old.ok && !old.keepAlive);
  assert.equal(parseHead("GET http://x/ HTTP/1.1", limits).ok, false);
  assert.equal(parseHead("GET /metrics HTTP/1.1\r\nbad header", limits).ok, false);
  assert.equal(parseHead("GET  /metrics HTTP/1.1", limits).ok, false);
  const long = parseHead(`GET /${"x".repeat(16)} HTTP/1.1`, limits);
  assert.ok(!long.ok && long.status === 414);
});

Deno.test("metrics port: past the connection cap, the longest-waiting connection makes room", async () => {
  const warnings: string[] = [];
  const server = serve({ ...FAST, headerTimeoutMs: 5000, idleTimeoutMs: 5000 }, warnings);
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    }
    await delay(200);
    const answer = await request(server.port, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 200 OK/, "served while 40 idle connections wait");
    // Only the newest 7 idle connections (plus the request's) can still be open.
    const states = await Promise.all(conns.map((conn) => closedWithin(conn, 100)));
    const open = states.filter((ms) => ms === Infinity).length;
    assert.ok(open <= 8, `${open} idle connections still open; the cap is 8`);
    assert.deepEqual(warnings, [], "evicting idle connections is not an error");
  } finally {
    conns.forEach(closeQuietly);
    await server.close();
  }
});

const needsPrlimit = requires({ commands: ["prlimit"] });

/** What a flood client did, and when the server closed it. */
interface FloodConn {
  kind: "idle" | "half" | "slow" | "kept";
  conn: Deno.Conn;
  closedAt?: number;
}

Deno.test({
  name: "daemon: a flood under nofile=64 neither ends it nor keeps /healthz down",
  ...requires({ commands: ["prlimit", "openssl"] }),
  async fn() {
    // The daemon reports to the API fixture, so its own connections need descriptors too.
    const api = await ApiFixture.start();
    api.seedCiliumNode("node-1");
    const dir = await Deno.makeTempDir({ prefix: "aim-flood-" });
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    await Deno.writeTextFile(`${dir}/rules`, "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
    await Deno.mkdir(`${dir}/allow`);
    await Deno.writeTextFile(`${dir}/allow/global`, "^-P INPUT ACCEPT$\n");
    const child = new Deno.Command("prlimit", {
      args: [
        "--nofile=64:64",
        Deno.execPath(),
        ...monitorArgs(),
        `-kubeconfig=${api.kubeconfigPath}`,
        "-interval=1",
        `-input=${dir}/allow`,
        `-rulesFile=${dir}/rules`,
        `-metricsAddress=127.0.0.1:${port}`,
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1", NODE_NAME: "node-1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const log = { text: "" };
    const drained = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        log.text += chunk;
      }
    })();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const flood: FloodConn[] = [];
    let dripping = true;
    try {
      const healthz = async (timeoutMs: number): Promise<number | undefined> => {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/healthz`, {
            signal: AbortSignal.timeout(timeoutMs),
          });
          await response.body?.cancel();
          return response.status;
        } catch {
          return undefined;
        }
      };
      const deadline = Date.now() + 15_000;
      while ((await healthz(500)) !== 200) {
        assert.ok(!exited, `the daemon ended:\n${log.text}`);
        assert.ok(Date.now() < deadline, `no /healthz within 15 s:\n${log.text}`);
        await delay(100);
      }

      const open = async (kind: FloodConn["kind"]): Promise<FloodConn | undefined> => {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          const entry: FloodConn = { kind, conn };
          flood.push(entry);
          readToEnd(conn).then(() => entry.closedAt = performance.now());
          if (kind === "half") await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\n"));
          if (kind === "kept") await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\n\r\n"));
          if (kind === "slow") {
            (async () => {
              while (dripping && entry.closedAt === undefined) {
                await conn.write(encoder.encode("G")).catch(() => {});
                await delay(200);
              }
            })();
          }
          return entry;
        } catch {
          return undefined; // the listen queue is full: refused by the kernel
        }
      };
      // Three waves over about 6 s: 400 connections, six times the descriptors it has.
      for (let wave = 0; wave < 3; wave++) {
        for (let i = 0; i < 60; i++) await open("idle");
        for (let i = 0; i < 30; i++) await open("half");
        for (let i = 0; i < 30; i++) await open("slow");
        for (let i = 0; i < 13; i++) await open("kept");
        await delay(2000);
        assert.ok(!exited, `the daemon ended during the flood:\n${lastLines(log.text)}`);
      }
      const floodEnd = performance.now();
      // Every flood connection is closed by the server within the documented deadlines
      // (5 s for a request head, 15 s idle after an answer), plus time to reach each.
      const limit = floodEnd + DEFAULT_LIMITS.idleTimeoutMs + 5_000;
      while (flood.some((entry) => entry.closedAt === undefined) && performance.now() < limit) {
        await delay(100);
      }
      const lingering = flood.filter((entry) => entry.closedAt === undefined);
      assert.deepEqual(
        lingering.map((entry) => entry.kind),
        [],
        `connections still open ${DEFAULT_LIMITS.idleTimeoutMs + 5000} ms after the flood`,
      );
      const heads = flood.filter((entry) => entry.kind !== "kept");
      const slowest = Math.max(...heads.map((entry) => entry.closedAt! - floodEnd));
      assert.ok(
        slowest < DEFAULT_LIMITS.headerTimeoutMs + 5000,
        `a connection without a request was closed ${Math.round(slowest)} ms after the flood`,
      );
      assert.ok(!exited, `the daemon ended:\n${lastLines(log.text)}`);
      // Once the flood is over, /healthz answers again at once.
      const after = Date.now() + 3_000;
      let answer = await healthz(1000);
      while (answer !== 200 && Date.now() < after) answer = await healthz(1000);
      assert.equal(answer, 200, `/healthz after the flood:\n${lastLines(log.text)}`);
      const warnings = log.text.split("\n").filter((line) => line.includes("metrics server"));
      assert.ok(warnings.length <= 12, `warnings are rate-limited:\n${warnings.join("\n")}`);
      // The daemon kept checking and reporting: clean, so the label says "false".
      api.setLabel("node-1", LABEL, "true");
      const relabelled = Date.now() + 5_000;
      while (api.labels("node-1")?.[LABEL] !== "false" && Date.now() < relabelled) {
        await delay(100);
      }
      assert.equal(api.labels("node-1")?.[LABEL], "false", lastLines(log.text));
      assert.doesNotMatch(log.text, /internal error|Uncaught|panicked|\n {4}at /);
      assert.doesNotMatch(log.text, /Too many open files/, "the cap keeps descriptors free");
    } finally {
      dripping = false;
      flood.forEach((entry) => closeQuietly(entry.conn));
      try {
        child.kill("SIGTERM");
      } catch {
        // ended already
      }
      const ended = await Promise.race([status, delay(10_000).then(() => undefined)]);
      if (ended === undefined) {
        child.kill("SIGKILL");
        await status;
      }
      await drained;
      await api.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "metrics port: out of descriptors, accept errors are logged rate-limited and serving resumes",
  ...needsPrlimit,
  async fn() {
    // A cap above what nofile=40 allows, so that accept itself fails with EMFILE.
    const child = new Deno.Command("prlimit", {
      args: [
        "--nofile=40:40",
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}/tests/_support/metrics_harness.ts`,
        "200",
      ],
      clearEnv: true,
      env: { NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin.getWriter();
    const out = { text: "" };
    const err = { text: "" };
    const collect = async (stream: ReadableStream<Uint8Array>, sink: { text: string }) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) sink.text += chunk;
    };
    const drained = Promise.all([collect(child.stdout, out), collect(child.stderr, err)]);
    let exited = false;
    const status = child.status.then((s) => (exited = true, s));
    const conns: Deno.Conn[] = [];
    try {
      while (!out.text.includes("\n")) {
        assert.ok(!exited, `the harness ended:\n${err.text}`);
        await delay(20);
      }
      const port = Number(out.text.trim());
      for (let i = 0; i < 150; i++) {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      await delay(3000);
      if (exited) {
        const ended = await status;
        await drained;
        assert.fail(`the server ended (${ended.code}):\n${err.text}`);
      }
      assert.match(err.text, /cannot accept connections: Too many open files/);
      const lines = err.text.trim().split("\n");
      assert.ok(lines.length <= 3, `rate-limited to one line per 10 s:\n${err.text}`);
      conns.forEach(closeQuietly);
      const deadline = Date.now() + 5_000;
      let answer = "";
      while (!answer.startsWith("HTTP/1.1 200") && Date.now() < deadline) {
        answer = await request(port, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
          .catch(() => "");
      }
      assert.match(answer, /^HTTP\/1\.1 200 OK/, `after the flood:\n${err.text}`);
      assert.doesNotMatch(err.text, /panicked|Uncaught/);
    } finally {
      conns.forEach(closeQuietly);
      await stdin.close().catch(() => {});
      const ended = await Promise.race([status, delay(5_000).then(() => undefined)]);
      if (ended === undefined) {
        child.kill("SIGKILL");
        await status;
      }
      await drained;
    }
  },
});

Deno.test("metrics port: a client that does not read its answers is cut at the write deadline", async () => {
  const body = "x".repeat(64 * 1024);
  const server = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    limits: { writeTimeoutMs: 300 },
    handler: () => ({ status: 200, body }),
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    // 200 pipelined requests ask for 12.8 MiB, far more than the socket buffers hold.
    await conn.write(encoder.encode("GET /metrics HTTP/1.1\r\n\r\n".repeat(200)));
    await delay(1500);
    assert.equal(server.openConnections(), 0, "the stalled connection was closed");
    const received = (await readToEnd(conn)).length;
    assert.ok(received < 200 * body.length, `${received} bytes: not every answer was sent`);
  } finally {
    closeQuietly(conn);
    await server.close();
  }
});
