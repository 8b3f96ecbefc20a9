import {
  type HttpLibrary,
  type KubeConfig,
  Observable,
  type RequestContext,
  ResponseContext,
  SelfDecodingBody,
} from "@kubernetes/client-node";
import { Buffer } from "node:buffer";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import { LocalSetupError, RedirectRefusedError, UntrustedServerError } from "./errors.ts";

/** The largest answer read from the API server; more is an error, not a bigger buffer. */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Connections open at once to the API server (a check sends its requests one at a time). */
const MAX_SOCKETS = 2;

/** The TLS settings of the current context, as PEM text. */
interface TlsSettings {
  /** The cluster's CA: the only one trusted. */
  ca: string;
  cert?: string;
  key?: string;
}

function given(value: string | undefined | null): value is string {
  return value !== undefined && value !== null && value !== "";
}

/** A CA bundle, certificate or key is far smaller than this. */
const MAX_PEM_BYTES = 1024 * 1024;

/**
 * Reads a PEM file, which must be a regular file (a FIFO would block every request) of
 * at most {@linkcode MAX_PEM_BYTES}, counted as read.
 */
function readPemFile(path: string): string {
  let file: Deno.FsFile | undefined;
  try {
    if (!Deno.statSync(path).isFile) throw new Error("not a regular file");
    file = Deno.openSync(path);
    const buffer = new Uint8Array(MAX_PEM_BYTES + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const read = file.readSync(buffer.subarray(filled));
      if (read === null) break;
      filled += read;
    }
    if (filled > MAX_PEM_BYTES) throw new Error(`larger than ${MAX_PEM_BYTES / 1024} KiB`);
    return new TextDecoder().decode(buffer.subarray(0, filled));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new LocalSetupError(`cannot read ${path}: ${reason}`);
  } finally {
    file?.close();
  }
}

function pemFrom(file: string | undefined, data: string | undefined): string | undefined {
  if (given(file)) return readPemFile(file);
  if (given(data)) {
    return Buffer.from(data, "base64").toString("utf8");
  }
  return undefined;
}

/** The current cluster's `https://` server URL; throws when it is unusable here. */
function serverOf(config: KubeConfig): URL {
  const cluster = config.getCurrentCluster();
  if (cluster === null) {
    throw new LocalSetupError("the Kubernetes configuration has no current cluster");
  }
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new LocalSetupError(
      `the API server address ${JSON.stringify(cluster.server)} is not a URL`,
    );
  }
  if (url.protocol !== "https:") {
    throw new LocalSetupError(
      `the API server address ${cluster.server} is not https://: the monitor sends its ` +
        "credentials and the label only over TLS",
    );
  }
  return url;
}

/** Reads the TLS settings of the current context; throws one clear line when unusable. */
function settingsOf(config: KubeConfig): TlsSettings {
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
  if (given(cluster.tlsServerName)) {
    throw new LocalSetupError("tls-server-name is not supported; use the name in the certificate");
  }
  if (given(cluster.proxyUrl)) {
    throw new LocalSetupError(
      "proxy-url is not supported: the monitor connects to the API server directly",
    );
  }
  const ca = pemFrom(cluster.caFile, cluster.caData);
  if (ca === undefined || !ca.includes("-----BEGIN CERTIFICATE-----")) {
    throw new LocalSetupError(
      ca === undefined
        ? "the cluster has no CA: give certificate-authority or certificate-authority-data " +
          "(the monitor trusts exactly the cluster's CA, never the system's)"
        : "the cluster's CA is not a PEM certificate (certificate-authority or " +
          "certificate-authority-data)",
    );
  }
  const user = config.getCurrentUser();
  const settings: TlsSettings = { ca };
  const cert = pemFrom(user?.certFile, user?.certData);
  const key = pemFrom(user?.keyFile, user?.keyData);
  if (cert !== undefined && key !== undefined) {
    settings.cert = cert;
    settings.key = key;
  }
  return settings;
}

/** Node's TLS verification error codes, and what each means for the operator. */
const TRUST_ERRORS: Record<string, string> = {
  ERR_TLS_CERT_ALTNAME_INVALID: "its certificate is not for this address",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "its certificate is not signed by the cluster's CA",
  UNABLE_TO_GET_ISSUER_CERT: "its certificate is not signed by the cluster's CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "its certificate is not signed by the cluster's CA",
  SELF_SIGNED_CERT_IN_CHAIN: "its certificate is not signed by the cluster's CA",
  DEPTH_ZERO_SELF_SIGNED_CERT: "its certificate is self-signed, not signed by the cluster's CA",
  CERT_HAS_EXPIRED: "its certificate has expired",
  CERT_NOT_YET_VALID: "its certificate is not valid yet",
};

function describeFailure(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && code in TRUST_ERRORS) {
    return new UntrustedServerError(
      `the API server was not trusted: ${TRUST_ERRORS[code]} (${error.message}); only the ` +
        "CA named by the kubeconfig or the service account is trusted",
      { cause: error },
    );
  }
  return error;
}

function headersOf(response: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

/**
 * Sends client-node's requests over HTTP/1.1 with `node:https`, trusting exactly the
 * cluster's CA. Deno's `fetch` cannot do that: `Deno.createHttpClient({ caCerts })` adds
 * the CA to Deno's bundled roots and to `DENO_CERT`, while `node:https` with `ca` trusts
 * that CA alone (not the bundled roots, not `DENO_CERT`, not the system store). Redirects
 * are refused, never followed; an answer is read whole (at most
 * {@linkcode MAX_RESPONSE_BYTES}) before the request counts as answered, so the caller's
 * timeout covers all of it.
 *
 * Every request opens its own connection: under Deno, destroying a request on a reused
 * keep-alive socket leaves its read pending until the server answers, which would hold
 * shutdown; a check sends only a handful of requests per interval.
 *
 * The CA and client certificate are read from the configuration at every request
 * (files may be rotated); the agent holding them is rebuilt only when they change.
 */
export class NodeHttpsTransport implements HttpLibrary {
  readonly #config: KubeConfig;
  #agent: https.Agent | undefined;
  #agentKey = "";
  /** Aborts the requests under way when the transport closes (shutdown must not wait). */
  #closing = new AbortController();

  /** Throws when the configuration asks for something this transport cannot do. */
  constructor(config: KubeConfig) {
    this.#config = config;
    serverOf(config);
    settingsOf(config);
  }

  send(request: RequestContext): Observable<ResponseContext> {
    return new Observable(this.#send(request));
  }

  /**
   * Aborts the requests under way and closes the connections; a later request opens
   * new ones.
   */
  close(): void {
    this.#closing.abort();
    this.#closing = new AbortController();
    this.#agent?.destroy();
    this.#agent = undefined;
    this.#agentKey = "";
  }

  #agentFor(settings: TlsSettings): https.Agent {
    const key = JSON.stringify(settings);
    if (this.#agent === undefined || key !== this.#agentKey) {
      this.#agent?.destroy();
      // No keep-alive: see the class comment.
      this.#agent = new https.Agent({
        keepAlive: false,
        maxSockets: MAX_SOCKETS,
        ca: settings.ca,
        cert: settings.cert,
        key: settings.key,
        rejectUnauthorized: true,
      });
      this.#agentKey = key;
    }
    return this.#agent;
  }

  #send(request: RequestContext): Promise<ResponseContext> {
    const body = request.getBody();
    if (body !== undefined && typeof body !== "string") {
      return Promise.reject(new LocalSetupError("only string request bodies are supported"));
    }
    let agent: https.Agent;
    let target: URL;
    try {
      const server = serverOf(this.#config);
      agent = this.#agentFor(settingsOf(this.#config));
      target = new URL(request.getUrl());
      // client-node builds the URL from the server address; anything else is refused.
      if (target.origin !== server.origin) {
        throw new LocalSetupError(`refusing a request to ${target.origin}, not ${server.origin}`);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const signals = [this.#closing.signal];
    const own = request.getSignal();
    if (own !== undefined) signals.push(own);
    const signal = AbortSignal.any(signals);
    const headers: Record<string, string> = { ...request.getHeaders() };
    if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));

    return new Promise<ResponseContext>((resolve, reject) => {
      let settled = false;
      const finish = (error: unknown, value?: ResponseContext) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        if (value !== undefined) resolve(value);
        else reject(describeFailure(error));
      };
      const outgoing = https.request({
        protocol: "https:",
        hostname: target.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: target.port === "" ? 443 : Number(target.port),
        path: `${target.pathname}${target.search}`,
        method: request.getHttpMethod(),
        headers,
        agent,
      });
      function onAbort() {
        const reason = signal.reason instanceof Error
          ? signal.reason
          : new Error("the request was aborted");
        outgoing.destroy(reason);
        finish(reason);
      }
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      outgoing.on("error", (error) => finish(error));
      outgoing.on("response", (response: IncomingMessage) => {
        const status = response.statusCode ?? 0;
        if (status >= 300 && status < 400) {
          finish(new RedirectRefusedError(status, response.headers.location));
          response.destroy();
          outgoing.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            finish(new Error(`the answer is larger than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB`));
            response.destroy();
            outgoing.destroy();
            return;
          }
          chunks.push(chunk);
        });
        response.on("error", (error) => finish(error));
        response.on("aborted", () => finish(new Error("the answer was cut off")));
        response.on("end", () => {
          if (!response.complete) {
            finish(new Error("the answer was cut off"));
            return;
          }
          const bytes = Buffer.concat(chunks);
          finish(
            undefined,
            new ResponseContext(
              status,
              headersOf(response),
              new SelfDecodingBody(Promise.resolve(bytes)),
            ),
          );
        });
      });
      outgoing.end(body);
    });
  }
}
