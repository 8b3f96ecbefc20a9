import { ApiException } from "@kubernetes/client-node";
import { z } from "zod";

/** What a request was for, so that a failure can name the RBAC permission it needs. */
export interface ApiRequest {
  verb: "get" | "patch" | "create" | "update";
  /** The plural resource as RBAC names it: `ciliumnodes`, `nodes`, `events`. */
  resource: string;
  /** The API group; `""` for the core group. */
  group: string;
  name?: string;
  /** Unset for cluster-scoped resources. */
  namespace?: string;
}

/**
 * How a request failed: the server answered with an error status (a refused redirect
 * too), no answer came in time, the connection failed, the server's certificate was
 * refused, the answer could not be understood, or the request could not be prepared
 * here (e.g. the token file is unreadable).
 */
export type FailureKind = "status" | "timeout" | "network" | "untrusted" | "response" | "local";

/** A request could not be prepared: credentials or TLS files unreadable or unusable. */
export class LocalSetupError extends Error {
  override readonly name = "LocalSetupError";
}

/**
 * The API server answered with a redirect. Redirects are never followed: the request
 * would go where the kubeconfig does not say (another host, or plain HTTP).
 */
export class RedirectRefusedError extends Error {
  override readonly name = "RedirectRefusedError";

  constructor(readonly status: number, readonly location: string | undefined) {
    super(
      `the API server answered ${status} redirecting to ${location ?? "(no Location)"}; ` +
        "redirects are not followed: point the kubeconfig at the API server itself",
    );
  }
}

/** The server's certificate was refused: not from the configured CA, or not for its name. */
export class UntrustedServerError extends Error {
  override readonly name = "UntrustedServerError";
}

/** A failed API request, with what the reporter needs to retry it or explain it. */
export class KubeApiError extends Error {
  override readonly name = "KubeApiError";

  constructor(
    readonly request: ApiRequest,
    readonly kind: FailureKind,
    message: string,
    readonly status?: number,
    /** How long the server asked us to wait (`Retry-After`), in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** 429, 5xx, timeouts and broken connections may succeed when tried again. */
  get retriable(): boolean {
    if (this.kind === "timeout" || this.kind === "network") return true;
    if (this.kind !== "status" || this.status === undefined) return false;
    return this.status === 429 || this.status >= 500;
  }

  get notFound(): boolean {
    return this.kind === "status" && this.status === 404;
  }

  get conflict(): boolean {
    return this.kind === "status" && this.status === 409;
  }

  /** The same failure with a note appended, e.g. how many attempts were made. */
  withNote(note: string): KubeApiError {
    return new KubeApiError(
      this.request,
      this.kind,
      `${this.message} (${note})`,
      this.status,
      this.retryAfterMs,
    );
  }
}

/** `patch ciliumnodes.cilium.io "aks-1"`, `create events in namespace "default"`. */
export function describeRequest(request: ApiRequest): string {
  const resource = request.group === "" ? request.resource : `${request.resource}.${request.group}`;
  const name = request.name === undefined ? "" : ` "${request.name}"`;
  const namespace = request.namespace === undefined ? "" : ` in namespace "${request.namespace}"`;
  return `${request.verb} ${resource}${name}${namespace}`;
}

const StatusBody = z.object({
  message: z.string().optional(),
  reason: z.string().optional(),
});

/** The server's explanation from a `Status` body, if it sent one. */
function serverMessage(body: unknown): string | undefined {
  if (typeof body === "string") {
    const text = body.trim();
    if (text === "") return undefined;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return text.split("\n")[0].slice(0, 300);
    }
    return serverMessage(json);
  }
  const parsed = StatusBody.safeParse(body);
  if (!parsed.success) return undefined;
  const { message, reason } = parsed.data;
  return message ?? reason;
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function rbacMessage(request: ApiRequest, status: number, detail: string | undefined): string {
  const scope = request.namespace === undefined
    ? "cluster-wide"
    : `in namespace "${request.namespace}"`;
  const group = request.group === "" ? "the core API group" : `API group "${request.group}"`;
  const said = detail === undefined ? "" : `; the server said: ${detail}`;
  if (status === 401) {
    return `${describeRequest(request)}: unauthorized (401): the API server did not accept ` +
      `the credentials (expired or revoked service-account token?)${said}`;
  }
  return `${describeRequest(request)}: forbidden (403): RBAC does not allow verb ` +
    `"${request.verb}" on resource "${request.resource}" in ${group} ${scope}; ` +
    `grant it in the ClusterRole bound to this service account${said}`;
}

/** The first line of an error and of its causes, for "connection failed: ..." messages. */
function causeChain(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      const line = current.message.split("\n")[0];
      if (line !== "" && !parts.includes(line)) parts.push(line);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.length === 0 ? "unknown error" : parts.join(": ");
}

/**
 * Turns whatever the client library threw into a {@linkcode KubeApiError} that says
 * which request failed and why, in one line.
 */
export function toKubeApiError(
  error: unknown,
  request: ApiRequest,
  timedOutAfterMs: number | undefined,
  now: number,
): KubeApiError {
  if (error instanceof KubeApiError) return error;
  if (timedOutAfterMs !== undefined) {
    const seconds = timedOutAfterMs / 1000;
    return new KubeApiError(
      request,
      "timeout",
      `${describeRequest(request)}: no answer within ${seconds} s`,
    );
  }
  if (error instanceof ApiException) {
    const status = error.code;
    const headers: Record<string, string> = error.headers ?? {};
    const detail = serverMessage(error.body);
    if (status === 401 || status === 403) {
      return new KubeApiError(request, "status", rbacMessage(request, status, detail), status);
    }
    const retryAfter = parseRetryAfter(headers["retry-after"], now);
    const said = detail === undefined ? "" : `: ${detail}`;
    return new KubeApiError(
      request,
      "status",
      `${describeRequest(request)}: HTTP ${status}${said}`,
      status,
      retryAfter,
    );
  }
  if (error instanceof RedirectRefusedError) {
    return new KubeApiError(
      request,
      "status",
      `${describeRequest(request)}: ${error.message}`,
      error.status,
    );
  }
  if (error instanceof UntrustedServerError) {
    return new KubeApiError(request, "untrusted", `${describeRequest(request)}: ${error.message}`);
  }
  if (error instanceof LocalSetupError) {
    return new KubeApiError(request, "local", `${describeRequest(request)}: ${error.message}`);
  }
  if (error instanceof SyntaxError) {
    return new KubeApiError(
      request,
      "response",
      `${describeRequest(request)}: unreadable answer: ${causeChain(error)}`,
    );
  }
  return new KubeApiError(
    request,
    "network",
    `${describeRequest(request)}: connection failed: ${causeChain(error)}`,
  );
}
