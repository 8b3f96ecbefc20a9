/**
 * A small HTTP/1.1 server over `Deno.listen` for the metrics port, with every limit in
 * our hands. `Deno.serve` has no deadline for request headers, no idle timeout and no
 * cap on connections, and an accept error (`EMFILE`) ends the process: anyone who can
 * reach the port could hold it open for ever or stop the daemon. Here:
 *
 * - the request line and headers must arrive within {@linkcode HttpLimits.headerTimeoutMs}
 *   of the connection (or of the first byte of a later request on it);
 * - a kept-alive connection with no new request for {@linkcode HttpLimits.idleTimeoutMs}
 *   is closed, and so is one whose reader does not take a response within
 *   {@linkcode HttpLimits.writeTimeoutMs};
 * - at most {@linkcode HttpLimits.maxConnections} connections are open; past that, the
 *   connection that has waited longest for a request is closed to make room, or the new
 *   one when all are being answered;
 * - only `GET` and `HEAD`, a target of at most {@linkcode HttpLimits.maxTargetBytes}, a
 *   head of at most {@linkcode HttpLimits.maxHeadBytes}, and no body;
 * - an accept or connection error is reported through a rate-limited log (one line per
 *   kind every 10 s, with a count) and never ends the server; out of file descriptors,
 *   it closes the connection that has waited longest for a request, else backs off, and
 *   accepts again once descriptors are free.
 *
 * An evicted or timed-out connection counts until its descriptor is released, so the
 * process never holds more than `maxConnections + 1` of them for the port.
 *
 * @module
 */

/** The limits of {@linkcode startHttpServer}. */
export interface HttpLimits {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
  maxConnections: number;
  maxTargetBytes: number;
  maxHeadBytes: number;
}

/**
 * The most connections the metrics port keeps open. Prometheus and the kubelet need one
 * each; the rest is slack. The cap is what keeps a flood from using up the process's
 * file descriptors: Deno does not survive running out of them everywhere (loading a
 * module then panics), and the permissions the daemon runs with cannot read its
 * `RLIMIT_NOFILE`. With Deno's own ~25 descriptors, the save commands' pipes and the
 * API connections, the daemon fits in `nofile` 64; containers get 1048576 by default.
 */
export const MAX_CONNECTIONS = 16;

/** The limits of the metrics port (documented in the README). */
export const DEFAULT_LIMITS: Readonly<HttpLimits> = {
  headerTimeoutMs: 5_000,
  idleTimeoutMs: 15_000,
  writeTimeoutMs: 10_000,
  maxConnections: MAX_CONNECTIONS,
  maxTargetBytes: 1024,
  maxHeadBytes: 8 * 1024,
};

/** A request as the handler sees it: a method it may answer, and the path without query. */
export interface HttpRequest {
  method: "GET" | "HEAD";
  path: string;
}

/** A complete answer (the body is small: metrics text or a line of health). */
export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** A running server. */
export interface HttpServer {
  readonly hostname: string;
  readonly port: number;
  /** Connections open now (for tests and the flood benchmark). */
  openConnections(): number;
  /** Stops accepting and closes every connection at once. */
  close(): Promise<void>;
}

/** What {@linkcode startHttpServer} needs. */
export interface HttpServerOptions {
  hostname: string;
  port: number;
  handler: (request: HttpRequest) => HttpResponse;
  limits?: Partial<HttpLimits>;
  /** Hears rate-limited warnings (accept and connection errors). */
  warn?: (line: string) => void;
  /** Minimum time between two warnings of the same kind. */
  warnEveryMs?: number;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Logs the first event of a kind at once, then at most one line per interval with a count. */
class RateLimitedWarnings {
  readonly #warn: (line: string) => void;
  readonly #everyMs: number;
  readonly #kinds = new Map<string, { lastAt: number; suppressed: number }>();

  constructor(warn: (line: string) => void, everyMs: number) {
    this.#warn = warn;
    this.#everyMs = everyMs;
  }

  report(kind: string, message: string): void {
    const now = Date.now();
    const state = this.#kinds.get(kind);
    if (state !== undefined && now - state.lastAt < this.#everyMs) {
      state.suppressed += 1;
      return;
    }
    const more = state !== undefined && state.suppressed > 0
      ? ` (${state.suppressed} more since the last report)`
      : "";
    this.#kinds.set(kind, { lastAt: now, suppressed: 0 });
    this.#warn(`${message}${more}`);
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** EMFILE (the process) and ENFILE (the system) as Deno reports them. */
const OUT_OF_DESCRIPTORS = /\(os error 2[34]\)/;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEAD_END = [13, 10, 13, 10];

function indexOfHeadEnd(bytes: Uint8Array, from: number): number {
  for (let i = Math.max(0, from - 3); i + 3 < bytes.length; i++) {
    if (
      bytes[i] === HEAD_END[0] && bytes[i + 1] === HEAD_END[1] && bytes[i + 2] === HEAD_END[2] &&
      bytes[i + 3] === HEAD_END[3]
    ) return i;
  }
  return -1;
}

/** What the head of a request asks for, or the status that refuses it. */
type Parsed =
  | { ok: true; request: HttpRequest; keepAlive: boolean }
  | { ok: false; status: number; message: string; allow?: string };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses a request head (without the blank line) under the limits. */
export function parseHead(head: string, limits: Pick<HttpLimits, "maxTargetBytes">): Parsed {
  const lines = head.split("\r\n");
  const requestLine = lines[0].split(" ");
  if (requestLine.length !== 3 || !TOKEN.test(requestLine[0])) {
    return { ok: false, status: 400, message: "bad request line" };
  }
  const [method, target, version] = requestLine;
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return { ok: false, status: 400, message: "only HTTP/1.0 and HTTP/1.1 are served" };
  }
  if (target.length > limits.maxTargetBytes) {
    return { ok: false, status: 414, message: `the target is over ${limits.maxTargetBytes} bytes` };
  }
  if (!target.startsWith("/")) {
    return { ok: false, status: 400, message: "the target must be a path" };
  }
  let connection = "";
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) {
      return { ok: false, status: 400, message: "bad header line" };
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "transfer-encoding" || (name === "content-length" && value !== "0")) {
      return { ok: false, status: 413, message: "requests carry no body here" };
    }
    if (name === "connection") connection = value.toLowerCase();
  }
  if (method !== "GET" && method !== "HEAD") {
    return { ok: false, status: 405, message: "method not allowed: use GET", allow: "GET, HEAD" };
  }
  const keepAlive = version === "HTTP/1.1"
    ? !connection.split(",").some((token) => token.trim() === "close")
    : connection.split(",").some((token) => token.trim() === "keep-alive");
  const query = target.indexOf("?");
  const path = query === -1 ? target : target.slice(0, query);
  return { ok: true, request: { method, path }, keepAlive };
}

function serialize(response: HttpResponse, head: boolean, keepAlive: boolean): Uint8Array {
  const body = encoder.encode(response.body);
  const lines = [
    `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? "Status"}`,
    `content-length: ${body.length}`,
    `connection: ${keepAlive ? "keep-alive" : "close"}`,
    ...Object.entries(response.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
    "",
    "",
  ];
  const headBytes = encoder.encode(lines.join("\r\n"));
  if (head) return headBytes;
  const all = new Uint8Array(headBytes.length + body.length);
  all.set(headBytes);
  all.set(body, headBytes.length);
  return all;
}

/** One open connection and where it is in its life. */
interface Connection {
  conn: Deno.Conn;
  /** `waiting` for (the rest of) a request, or `answering` one. */
  phase: "waiting" | "answering";
  since: number;
  closed: boolean;
  /** Settles when the connection has ended and its descriptor is released. */
  done: Promise<void>;
}

/**
 * Starts serving. Throws one clear line when the address cannot be listened on (e.g.
 * in use); nothing after that throws.
 */
export function startHttpServer(options: HttpServerOptions): HttpServer {
  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const warnings = new RateLimitedWarnings(
    options.warn ?? (() => {}),
    options.warnEveryMs ?? 10_000,
  );
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const open = new Set<Connection>();
  let closing = false;
  /** Ends the accept loop's back-off at once when the server closes. */
  let wake = () => {};

  function closeConnection(connection: Connection): void {
    if (connection.closed) return;
    connection.closed = true;
    open.delete(connection);
    try {
      connection.conn.close();
    } catch {
      // already closed by the peer
    }
  }

  /**
   * Closes the connection that has waited longest for a request and resolves once its
   * descriptor is released (its pending read has ended); false when none waits.
   */
  async function closeOldestWaiting(): Promise<boolean> {
    let oldest: Connection | undefined;
    for (const connection of open) {
      if (connection.phase !== "waiting") continue;
      if (oldest === undefined || connection.since < oldest.since) oldest = connection;
    }
    if (oldest === undefined) return false;
    closeConnection(oldest);
    await oldest.done;
    return true;
  }

  /** Makes room for one more connection; false when every slot is busy answering. */
  async function makeRoom(): Promise<boolean> {
    return open.size < limits.maxConnections || await closeOldestWaiting();
  }

  /** Runs `step` with a deadline; past it the connection is closed (the step then fails). */
  async function within<T>(connection: Connection, ms: number, step: () => Promise<T>): Promise<T> {
    const timer = setTimeout(() => closeConnection(connection), ms);
    try {
      return await step();
    } finally {
      clearTimeout(timer);
    }
  }

  async function writeAll(connection: Connection, bytes: Uint8Array): Promise<void> {
    await within(connection, limits.writeTimeoutMs, async () => {
      let written = 0;
      while (written < bytes.length) {
        written += await connection.conn.write(bytes.subarray(written));
      }
    });
  }

  async function serve(connection: Connection): Promise<void> {
    const buffer = new Uint8Array(limits.maxHeadBytes + 4);
    let filled = 0;
    let first = true;
    try {
      while (!connection.closed) {
        connection.phase = "waiting";
        connection.since = Date.now();
        // Idle: wait for the first byte of the next request (none for a new connection).
        if (filled === 0 && !first) {
          const read = await within(
            connection,
            limits.idleTimeoutMs,
            () => connection.conn.read(buffer),
          );
          if (read === null) return;
          filled = read;
        }
        first = false;
        // The whole head must arrive within the header deadline.
        const headEnd = await within(connection, limits.headerTimeoutMs, async () => {
          let end = indexOfHeadEnd(buffer.subarray(0, filled), 0);
          while (end === -1) {
            if (filled >= limits.maxHeadBytes) return -2;
            const read = await connection.conn.read(buffer.subarray(filled, limits.maxHeadBytes));
            if (read === null) return -1;
            const before = filled;
            filled += read;
            end = indexOfHeadEnd(buffer.subarray(0, filled), before);
          }
          return end;
        });
        if (headEnd === -1) return;
        connection.phase = "answering";
        let parsed: Parsed;
        if (headEnd === -2) {
          parsed = {
            ok: false,
            status: 431,
            message: `the request head is over ${limits.maxHeadBytes} bytes`,
          };
        } else {
          parsed = parseHead(decoder.decode(buffer.subarray(0, headEnd)), limits);
          buffer.copyWithin(0, headEnd + 4, filled);
          filled -= headEnd + 4;
        }
        if (!parsed.ok) {
          const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
          if (parsed.allow !== undefined) headers.allow = parsed.allow;
          await writeAll(
            connection,
            serialize(
              { status: parsed.status, headers, body: `${parsed.message}\n` },
              false,
              false,
            ),
          );
          return;
        }
        let response: HttpResponse;
        try {
          response = options.handler(parsed.request);
        } catch (error) {
          warnings.report("handler", `metrics server: internal error: ${reasonOf(error)}`);
          response = { status: 500, body: "internal error\n" };
        }
        await writeAll(
          connection,
          serialize(response, parsed.request.method === "HEAD", parsed.keepAlive),
        );
        if (!parsed.keepAlive) return;
      }
    } catch (error) {
      // Closed by a deadline or by close(), or reset by the peer: the usual end of a
      // misbehaving client. Anything else is worth a (rate-limited) line.
      if (
        !connection.closed && !(error instanceof Deno.errors.ConnectionReset) &&
        !(error instanceof Deno.errors.BrokenPipe)
      ) {
        warnings.report("connection", `metrics server: connection error: ${reasonOf(error)}`);
      }
    } finally {
      closeConnection(connection);
    }
  }

  async function acceptLoop(): Promise<void> {
    let backoffMs = 0;
    while (!closing) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoffMs = 0;
      } catch (error) {
        if (closing) return;
        warnings.report(
          "accept",
          `metrics server: cannot accept connections: ${reasonOf(error)}; ` +
            "retrying (idle and slow connections are closed by their deadlines)",
        );
        // Out of file descriptors, the pending connection stays queued: free one by
        // closing the connection that has waited longest for a request, else back off
        // instead of spinning, and accept again when descriptors are free.
        if (OUT_OF_DESCRIPTORS.test(reasonOf(error)) && await closeOldestWaiting()) {
          backoffMs = 0;
          continue;
        }
        backoffMs = Math.min(1000, Math.max(10, backoffMs * 2));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoffMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        continue;
      }
      if (closing) {
        conn.close();
        return;
      }
      const connection: Connection = {
        conn,
        phase: "waiting",
        since: Date.now(),
        closed: false,
        done: Promise.resolve(),
      };
      if (!await makeRoom()) {
        try {
          conn.close();
        } catch {
          // gone already
        }
        warnings.report(
          "full",
          `metrics server: ${limits.maxConnections} connections busy; refused one`,
        );
        continue;
      }
      open.add(connection);
      connection.done = serve(connection);
    }
  }

  const accepting = acceptLoop();
  const address = listener.addr as Deno.NetAddr;
  return {
    hostname: address.hostname,
    port: address.port,
    openConnections: () => open.size,
    async close() {
      closing = true;
      wake();
      try {
        listener.close();
      } catch {
        // already closed
      }
      for (const connection of [...open]) closeConnection(connection);
      await accepting;
    },
  };
}
