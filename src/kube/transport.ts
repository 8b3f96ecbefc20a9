import {
  type HttpLibrary,
  type KubeConfig,
  Observable,
  type RequestContext,
  ResponseContext,
  SelfDecodingBody,
} from "@kubernetes/client-node";
import { Buffer } from "node:buffer";
import { LocalSetupError } from "./errors.ts";

/** The TLS and proxy settings of the current context, as PEM text. */
interface ClientSettings {
  caCerts: string[];
  cert?: string;
  key?: string;
  proxy?: string;
}

function pemFrom(file: string | undefined, data: string | undefined): string | undefined {
  if (file !== undefined && file !== null && file !== "") {
    try {
      return Deno.readTextFileSync(file);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new LocalSetupError(`cannot read ${file}: ${reason}`);
    }
  }
  if (data !== undefined && data !== null && data !== "") {
    return Buffer.from(data, "base64").toString("utf8");
  }
  return undefined;
}

function settingsOf(config: KubeConfig): ClientSettings {
  const cluster = config.getCurrentCluster();
  if (cluster === null) {
    throw new LocalSetupError("the Kubernetes configuration has no current cluster");
  }
  if (cluster.skipTLSVerify) {
    throw new LocalSetupError(
      "insecure-skip-tls-verify is not supported: give the cluster's CA " +
        "(certificate-authority or certificate-authority-data)",
    );
  }
  if (cluster.tlsServerName !== undefined && cluster.tlsServerName !== null) {
    throw new LocalSetupError("tls-server-name is not supported; use the name in the certificate");
  }
  const user = config.getCurrentUser();
  const ca = pemFrom(cluster.caFile, cluster.caData);
  const settings: ClientSettings = { caCerts: ca === undefined ? [] : [ca] };
  const cert = pemFrom(user?.certFile, user?.certData);
  const key = pemFrom(user?.keyFile, user?.keyData);
  if (cert !== undefined && key !== undefined) {
    settings.cert = cert;
    settings.key = key;
  }
  if (cluster.proxyUrl !== undefined && cluster.proxyUrl !== null && cluster.proxyUrl !== "") {
    settings.proxy = cluster.proxyUrl;
  }
  return settings;
}

/**
 * Sends client-node's requests with Deno's own `fetch` instead of the bundled undici.
 * Under Deno, undici negotiates HTTP/2 through `node:http2`, which crashes the process,
 * and an aborted request whose headers have arrived never settles, so the 5 s timeout
 * could not end a stalled reply. Deno's fetch has neither problem. The body is read
 * before the request counts as answered, so the timeout covers all of it.
 *
 * The CA and client certificate are read from the configuration at every request
 * (files may be rotated); the HTTP client is rebuilt only when they change.
 */
export class DenoFetchTransport implements HttpLibrary {
  readonly #config: KubeConfig;
  #client: Deno.HttpClient | undefined;
  #clientKey = "";
  /** Aborts the requests under way when the transport closes (shutdown must not wait). */
  #closing = new AbortController();

  /** Throws when the configuration asks for something this transport cannot do. */
  constructor(config: KubeConfig) {
    this.#config = config;
    settingsOf(config);
  }

  send(request: RequestContext): Observable<ResponseContext> {
    return new Observable(this.#send(request));
  }

  /**
   * Aborts the requests under way and closes the HTTP client and its connections; a
   * later request opens a new one.
   */
  close(): void {
    this.#closing.abort();
    this.#closing = new AbortController();
    this.#client?.close();
    this.#client = undefined;
    this.#clientKey = "";
  }

  #httpClient(): Deno.HttpClient {
    const settings = settingsOf(this.#config);
    const key = JSON.stringify(settings);
    if (this.#client === undefined || key !== this.#clientKey) {
      this.#client?.close();
      this.#client = Deno.createHttpClient({
        caCerts: settings.caCerts,
        ...(settings.cert !== undefined && settings.key !== undefined
          ? { cert: settings.cert, key: settings.key }
          : {}),
        ...(settings.proxy !== undefined ? { proxy: { url: settings.proxy } } : {}),
      });
      this.#clientKey = key;
    }
    return this.#client;
  }

  async #send(request: RequestContext): Promise<ResponseContext> {
    const body = request.getBody();
    if (body !== undefined && typeof body !== "string") {
      throw new LocalSetupError("only string request bodies are supported");
    }
    const response = await fetch(request.getUrl(), {
      method: request.getHttpMethod(),
      headers: request.getHeaders(),
      body,
      signal: AbortSignal.any([
        this.#closing.signal,
        ...(request.getSignal() ? [request.getSignal()!] : []),
      ]),
      client: this.#httpClient(),
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return new ResponseContext(
      response.status,
      headers,
      new SelfDecodingBody(Promise.resolve(bytes)),
    );
  }
}
