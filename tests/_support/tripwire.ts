/**
 * A TCP listener that answers nothing and records every connection made to it: the
 * place a redirect points at, so that a test can assert that nothing ever went there
 * (not a request, not even a TLS handshake).
 */
export class Tripwire implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #open = new Set<Deno.TcpConn>();
  readonly #accepting: Promise<void>;
  #connections = 0;
  #bytes = 0;

  private constructor(listener: Deno.TcpListener) {
    this.#listener = listener;
    this.#accepting = this.#accept();
  }

  /** Listens on a free port of `hostname` (a loopback address). */
  static start(hostname = "127.0.0.1"): Tripwire {
    return new Tripwire(Deno.listen({ hostname, port: 0 }));
  }

  /** `host:port`, with brackets for IPv6. */
  get address(): string {
    const { hostname, port } = this.#listener.addr;
    return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** Bytes received so far, over all connections. */
  get bytes(): number {
    return this.#bytes;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.#connections += 1;
      this.#open.add(conn);
      this.#drain(conn);
    }
  }

  async #drain(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      for (;;) {
        const read = await conn.read(buffer);
        if (read === null) break;
        this.#bytes += read;
      }
    } catch {
      // closed by stop()
    } finally {
      this.#open.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  /** Stops listening and closes what is open. */
  async stop(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const conn of this.#open) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    await this.#accepting;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
