/**
 * A small Kubernetes API server for tests: real HTTPS (a CA made by the test), the real
 * paths, verbs and content types of the calls the monitor makes, objects kept in
 * memory, JSON merge patches (RFC 7386) applied to them, and faults on demand.
 *
 * Paths served:
 * - `GET|PATCH /apis/cilium.io/v2/ciliumnodes/{name}` (cluster-scoped)
 * - `GET /api/v1/nodes/{name}`
 * - `POST /api/v1/namespaces/{ns}/events`
 * - `GET|PUT|PATCH /api/v1/namespaces/{ns}/events/{name}`
 *
 * Like the API server it answers errors with a `Status` object, checks the bearer token
 * (401), accepts only `application/merge-patch+json` for PATCH and `application/json`
 * for POST/PUT (415), rejects a stale `metadata.resourceVersion` (409), an existing
 * name on create (409) and an Event message over 1 KiB (422), and bumps
 * `resourceVersion` on every write.
 *
 * Requires the openssl CLI (see `tls.ts`).
 *
 * @example
 * ```ts
 * await using api = await ApiFixture.start();
 * api.seedCiliumNode("node-1");
 * api.inject({ kind: "status", status: 503 }, { times: 2 });
 * // ... run the code under test with `-kubeconfig ${api.kubeconfigPath}` ...
 * assertEquals(api.labels("node-1")?.["kubernetes.azure.com/user-iptables-rules"], "true");
 * ```
 */

import { kubeconfigText, makeTestPki } from "./tls.ts";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
/** A JSON object, e.g. a stored Kubernetes object. */
export type JsonObject = { [key: string]: Json };

/** One request as the fixture received it, in arrival order. */
export interface RecordedRequest {
  method: string;
  /** The path without the query, e.g. `/api/v1/nodes/node-1`. */
  path: string;
  /** The query string without `?`, e.g. `resourceVersion=0`. */
  query: string;
  contentType: string | null;
  authorization: string | null;
  body: string;
  /** The status answered; undefined while pending, and for a dropped connection. */
  status?: number;
  /** The fault injected into this request, if any (`status 503`, `slow`, `drop`). */
  fault?: string;
}

/** Something the fixture does to a request instead of (or before) serving it. */
export type Fault =
  /** Answer with this status and a `Status` body; `retryAfter` sets `Retry-After`. */
  | { kind: "status"; status: number; retryAfter?: string; message?: string }
  /** Wait `delayMs` before serving (a write is applied even if the client gave up). */
  | { kind: "slow"; delayMs: number }
  /**
   * Send headers, then break the response (an HTTP/2 stream reset, or a closed
   * connection). With `afterServing`, the request is carried out first, as when a
   * connection breaks after the server committed a write.
   */
  | { kind: "drop"; afterServing?: boolean }
  /** Send headers and the first byte of the body, then nothing until the fixture stops. */
  | { kind: "stall" }
  /** Answer with a redirect (301, 302, 307, 308) to `location`, without serving. */
  | { kind: "redirect"; status: 301 | 302 | 303 | 307 | 308; location: string };

/** Which requests a fault applies to; by default every request, for ever. */
export interface FaultTarget {
  method?: string;
  /** The exact path, or a RegExp tested against it. */
  path?: string | RegExp;
  /** For how many matching requests; unset means until {@linkcode ApiFixture.clearFaults}. */
  times?: number;
}

interface ActiveFault {
  fault: Fault;
  target: FaultTarget;
  left: number;
}

/** What a request addresses, for RBAC-style messages and routing. */
interface Target {
  kind: "ciliumnode" | "node" | "event" | "events";
  resource: string;
  group: string;
  name?: string;
  namespace?: string;
}

const CILIUM_NODE_PATH = /^\/apis\/cilium\.io\/v2\/ciliumnodes\/([^/]+)$/;
const NODE_PATH = /^\/api\/v1\/nodes\/([^/]+)$/;
const EVENTS_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/events$/;
const EVENT_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/events\/([^/]+)$/;

const MERGE_PATCH = "application/merge-patch+json";
const JSON_TYPE = "application/json";
const EVENT_MESSAGE_LIMIT = 1024;

/** The service account the fixture's 403 messages name, as a real cluster would. */
export const FIXTURE_USER = "system:serviceaccount:kube-system:azure-iptables-monitor";

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJson(text: string): Json | undefined {
  try {
    const value: Json = JSON.parse(text);
    return value;
  } catch {
    return undefined;
  }
}

function copy<T extends Json>(value: T): T {
  return structuredClone(value);
}

/** RFC 7386: `null` removes a member, objects merge recursively, anything else replaces. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return copy(patch);
  const result: JsonObject = isObject(target) ? copy(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else {
      result[key] = applyMergePatch(result[key], value);
    }
  }
  return result;
}

function metadataOf(object: JsonObject): JsonObject {
  const metadata = object.metadata;
  if (isObject(metadata)) return metadata;
  const fresh: JsonObject = {};
  object.metadata = fresh;
  return fresh;
}

function stringField(object: JsonObject, key: string): string | undefined {
  const value = object[key];
  return typeof value === "string" ? value : undefined;
}

function verbOf(method: string): string {
  switch (method) {
    case "GET":
      return "get";
    case "PATCH":
      return "patch";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "DELETE":
      return "delete";
    default:
      return method.toLowerCase();
  }
}

const REASONS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

function statusResponse(
  code: number,
  message: string,
  options: { reason?: string; target?: Target; headers?: Record<string, string> } = {},
): Response {
  const details: JsonObject = {};
  if (options.target?.name !== undefined) details.name = options.target.name;
  if (options.target !== undefined) {
    details.kind = options.target.resource;
    if (options.target.group !== "") details.group = options.target.group;
  }
  const body: JsonObject = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason: options.reason ?? REASONS[code] ?? "Unknown",
    details,
    code,
  };
  return new Response(JSON.stringify(body), {
    status: code,
    headers: { "content-type": JSON_TYPE, ...options.headers },
  });
}

function objectResponse(object: JsonObject, status = 200): Response {
  return new Response(JSON.stringify(object), {
    status,
    headers: { "content-type": JSON_TYPE },
  });
}

function qualified(target: Target): string {
  return target.group === "" ? target.resource : `${target.resource}.${target.group}`;
}

function forbiddenMessage(method: string, target: Target): string {
  const what = target.name === undefined
    ? qualified(target)
    : `${qualified(target)} "${target.name}"`;
  const scope = target.namespace === undefined
    ? "at the cluster scope"
    : `in the namespace "${target.namespace}"`;
  return `${what} is forbidden: User "${FIXTURE_USER}" cannot ${verbOf(method)} resource ` +
    `"${target.resource}" in API group "${target.group}" ${scope}`;
}

function notFound(target: Target): Response {
  return statusResponse(404, `${qualified(target)} "${target.name ?? ""}" not found`, { target });
}

function routeOf(path: string): Target | undefined {
  let match = CILIUM_NODE_PATH.exec(path);
  if (match) {
    return {
      kind: "ciliumnode",
      resource: "ciliumnodes",
      group: "cilium.io",
      name: decodeURIComponent(match[1]),
    };
  }
  match = NODE_PATH.exec(path);
  if (match) {
    return { kind: "node", resource: "nodes", group: "", name: decodeURIComponent(match[1]) };
  }
  match = EVENTS_PATH.exec(path);
  if (match) {
    return {
      kind: "events",
      resource: "events",
      group: "",
      namespace: decodeURIComponent(match[1]),
    };
  }
  match = EVENT_PATH.exec(path);
  if (match) {
    return {
      kind: "event",
      resource: "events",
      group: "",
      namespace: decodeURIComponent(match[1]),
      name: decodeURIComponent(match[2]),
    };
  }
  return undefined;
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** A response whose body breaks right after the headers were sent. */
function droppedResponse(): Response {
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.error("connection dropped by the API fixture");
    },
  });
  return new Response(body, { headers: { "content-type": JSON_TYPE } });
}

/** The in-memory HTTPS API server. Start it with {@linkcode ApiFixture.start}. */
export class ApiFixture implements AsyncDisposable {
  /** A kubeconfig trusting the fixture's CA, with {@linkcode token} as bearer token. */
  readonly kubeconfigPath: string;
  /** The PEM file of the CA the kubeconfig trusts (the one that signed the certificate). */
  readonly caCertPath: string;
  /**
   * With `certificate: "foreign-ca"`, the PEM file of the other CA that signed the
   * server's certificate (what a test passes in `DENO_CERT`); else undefined.
   */
  readonly foreignCaCertPath: string | undefined;
  /** A temporary directory, removed by {@linkcode stop}. */
  readonly dir: string;

  #url = "";
  #token: string;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  readonly #stopping = new AbortController();
  readonly #objects = new Map<string, JsonObject>();
  readonly #requests: RecordedRequest[] = [];
  #faults: ActiveFault[] = [];
  #resourceVersion = 1000;

  private constructor(
    dir: string,
    caCertPath: string,
    token: string,
    foreignCaCertPath: string | undefined,
  ) {
    this.dir = dir;
    this.caCertPath = caCertPath;
    this.foreignCaCertPath = foreignCaCertPath;
    this.kubeconfigPath = `${dir}/kubeconfig`;
    this.#token = token;
  }

  /**
   * Starts a fixture on a free port with a fresh CA and certificate, and a kubeconfig
   * at {@linkcode kubeconfigPath}. It listens on 127.0.0.1 unless `hostname` names
   * another local address (a daemon in a network namespace reaches the host through a
   * veth pair, not through 127.0.0.1); the certificate covers that address too.
   *
   * `certificate` makes it misbehave: `"wrong-name"` serves a certificate from the
   * kubeconfig's CA made for another name only (`DNS:elsewhere.invalid`);
   * `"foreign-ca"` serves a valid certificate for the address from another CA
   * ({@linkcode foreignCaCertPath}), not the one the kubeconfig trusts.
   */
  static async start(
    options: {
      token?: string;
      hostname?: string;
      certificate?: "valid" | "wrong-name" | "foreign-ca";
    } = {},
  ): Promise<ApiFixture> {
    const hostname = options.hostname ?? "127.0.0.1";
    const certificate = options.certificate ?? "valid";
    const dir = await Deno.makeTempDir({ prefix: "aim-api-" });
    let fixture: ApiFixture | undefined;
    try {
      const trusted = await makeTestPki(
        dir,
        [hostname],
        certificate === "wrong-name" ? { names: ["DNS:elsewhere.invalid"] } : {},
      );
      let pki = trusted;
      if (certificate === "foreign-ca") {
        await Deno.mkdir(`${dir}/foreign`);
        pki = await makeTestPki(`${dir}/foreign`, [hostname]);
      }
      fixture = new ApiFixture(
        dir,
        trusted.caCertPath,
        options.token ?? "aim-test-token",
        certificate === "foreign-ca" ? pki.caCertPath : undefined,
      );
      const self = fixture;
      const server = Deno.serve({
        hostname,
        port: 0,
        cert: pki.cert,
        key: pki.key,
        onListen() {},
        onError: () => statusResponse(500, "internal error in the API fixture"),
      }, (request) => self.#handle(request));
      fixture.#server = server;
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      const url = `https://${host}:${server.addr.port}`;
      fixture.#url = url;
      await Deno.writeTextFile(
        fixture.kubeconfigPath,
        kubeconfigText({ server: url, caCert: trusted.caCert, token: fixture.#token }),
      );
      return fixture;
    } catch (error) {
      if (fixture !== undefined) await fixture.stop();
      else await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw error;
    }
  }

  /** `https://127.0.0.1:PORT` (or the address given to {@linkcode start}). */
  get url(): string {
    return this.#url;
  }

  /** The bearer token accepted from now on (the kubeconfig keeps the first one). */
  get token(): string {
    return this.#token;
  }

  set token(value: string) {
    this.#token = value;
  }

  /** Stops serving (slow replies in progress end at once) and removes {@linkcode dir}. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    if (this.#server !== undefined) {
      await this.#server.shutdown();
      this.#server = undefined;
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #nextVersion(): string {
    this.#resourceVersion += 1;
    return String(this.#resourceVersion);
  }

  #store(key: string, object: JsonObject): JsonObject {
    metadataOf(object).resourceVersion = this.#nextVersion();
    this.#objects.set(key, object);
    return object;
  }

  /** Creates or replaces the CiliumNode `name` with these labels. */
  seedCiliumNode(name: string, labels: Record<string, string> = {}): void {
    this.#store(`ciliumnode/${name}`, {
      apiVersion: "cilium.io/v2",
      kind: "CiliumNode",
      metadata: {
        name,
        uid: crypto.randomUUID(),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        labels: { ...labels },
      },
      spec: {},
    });
  }

  /** Creates or replaces the Node `name`; returns its UID. */
  seedNode(name: string, uid: string = crypto.randomUUID()): string {
    this.#store(`node/${name}`, {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, uid },
      spec: {},
      status: {},
    });
    return uid;
  }

  /** Deletes the CiliumNode `name` (as if Cilium removed it). */
  removeCiliumNode(name: string): void {
    this.#objects.delete(`ciliumnode/${name}`);
  }

  /** Deletes an Event (as the API server does when its TTL ends). */
  removeEvent(namespace: string, name: string): void {
    this.#objects.delete(`event/${namespace}/${name}`);
  }

  /** Changes one label by hand, as `kubectl label` would; `null` removes it. */
  setLabel(name: string, key: string, value: string | null): void {
    const object = this.#objects.get(`ciliumnode/${name}`);
    if (object === undefined) throw new Error(`no CiliumNode ${name} in the fixture`);
    const patched = applyMergePatch(object, { metadata: { labels: { [key]: value } } });
    if (isObject(patched)) this.#store(`ciliumnode/${name}`, patched);
  }

  /** A copy of the stored CiliumNode `name`. */
  ciliumNode(name: string): JsonObject | undefined {
    const object = this.#objects.get(`ciliumnode/${name}`);
    return object === undefined ? undefined : copy(object);
  }

  /** The labels of the stored CiliumNode `name`. */
  labels(name: string): Record<string, string> | undefined {
    const object = this.#objects.get(`ciliumnode/${name}`);
    if (object === undefined) return undefined;
    const labels = metadataOf(object).labels;
    const result: Record<string, string> = {};
    if (isObject(labels)) {
      for (const [key, value] of Object.entries(labels)) {
        if (typeof value === "string") result[key] = value;
      }
    }
    return result;
  }

  /** Copies of the stored Events of `namespace`, in creation order. */
  events(namespace = "default"): JsonObject[] {
    const prefix = `event/${namespace}/`;
    return [...this.#objects.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .map(([, object]) => copy(object));
  }

  /** Makes matching requests fail or misbehave, in the order faults were injected. */
  inject(fault: Fault, target: FaultTarget = {}): void {
    this.#faults.push({ fault, target, left: target.times ?? Number.POSITIVE_INFINITY });
  }

  /** Removes every injected fault. */
  clearFaults(): void {
    this.#faults = [];
  }

  /** The requests received so far, optionally only those of one method and path. */
  requests(filter: { method?: string; path?: string | RegExp } = {}): RecordedRequest[] {
    return this.#requests.filter((request) =>
      (filter.method === undefined || request.method === filter.method) &&
      (filter.path === undefined ||
        (typeof filter.path === "string"
          ? request.path === filter.path
          : filter.path.test(request.path)))
    );
  }

  /** Forgets the recorded requests. */
  clearRequests(): void {
    this.#requests.length = 0;
  }

  #takeFault(method: string, path: string): Fault | undefined {
    for (const active of this.#faults) {
      const { target } = active;
      if (active.left <= 0) continue;
      if (target.method !== undefined && target.method !== method) continue;
      if (target.path !== undefined) {
        const matches = typeof target.path === "string"
          ? target.path === path
          : target.path.test(path);
        if (!matches) continue;
      }
      active.left -= 1;
      return active.fault;
    }
    return undefined;
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const record: RecordedRequest = {
      method: request.method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ""),
      contentType: request.headers.get("content-type"),
      authorization: request.headers.get("authorization"),
      body: await request.text(),
    };
    this.#requests.push(record);
    const response = await this.#serve(record);
    if (response !== undefined) record.status = response.status;
    return response ?? droppedResponse();
  }

  /** The answer to `request`, or undefined to drop the connection. */
  async #serve(record: RecordedRequest): Promise<Response | undefined> {
    const target = routeOf(record.path);
    if (target === undefined) {
      return statusResponse(404, "the server could not find the requested resource");
    }
    if (record.authorization !== `Bearer ${this.#token}`) {
      return statusResponse(401, "Unauthorized");
    }
    const fault = this.#takeFault(record.method, record.path);
    if (fault !== undefined) {
      switch (fault.kind) {
        case "drop":
          record.fault = "drop";
          if (fault.afterServing) this.#route(record, target);
          return undefined;
        case "stall":
          record.fault = "stall";
          return this.#stalledResponse();
        case "redirect":
          record.fault = `redirect ${fault.status}`;
          return new Response(`see ${fault.location}\n`, {
            status: fault.status,
            headers: { location: fault.location, "content-type": "text/plain" },
          });
        case "slow":
          record.fault = "slow";
          await pause(fault.delayMs, this.#stopping.signal);
          if (this.#stopping.signal.aborted) return statusResponse(503, "the fixture is stopping");
          break;
        case "status": {
          record.fault = `status ${fault.status}`;
          const message = fault.message ??
            (fault.status === 403
              ? forbiddenMessage(record.method, target)
              : `injected ${REASONS[fault.status] ?? "error"} for ${record.path}`);
          const headers: Record<string, string> = {};
          if (fault.retryAfter !== undefined) headers["retry-after"] = fault.retryAfter;
          return statusResponse(fault.status, message, { target, headers });
        }
      }
    }
    return this.#route(record, target);
  }

  #stalledResponse(): Response {
    const stopping = this.#stopping.signal;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("{"));
        const end = () => controller.error("the API fixture stopped");
        if (stopping.aborted) end();
        else stopping.addEventListener("abort", end, { once: true });
      },
    });
    return new Response(body, { headers: { "content-type": JSON_TYPE } });
  }

  #route(record: RecordedRequest, target: Target): Response {
    const { method } = record;
    switch (target.kind) {
      case "ciliumnode":
        if (method === "GET") return this.#get(`ciliumnode/${target.name}`, target);
        if (method === "PATCH") return this.#patch(`ciliumnode/${target.name}`, target, record);
        break;
      case "node":
        if (method === "GET") return this.#get(`node/${target.name}`, target);
        break;
      case "events":
        if (method === "POST") return this.#createEvent(target, record);
        break;
      case "event": {
        const key = `event/${target.namespace}/${target.name}`;
        if (method === "GET") return this.#get(key, target);
        if (method === "PATCH") return this.#patch(key, target, record);
        if (method === "PUT") return this.#replace(key, target, record);
        break;
      }
    }
    return statusResponse(405, `the server does not allow this method on ${record.path}`, {
      target,
    });
  }

  #get(key: string, target: Target): Response {
    const object = this.#objects.get(key);
    return object === undefined ? notFound(target) : objectResponse(object);
  }

  /** The JSON object body of a write, or the error response to send instead. */
  #writeBody(record: RecordedRequest, expected: string): JsonObject | Response {
    const mediaType = (record.contentType ?? "").split(";")[0].trim().toLowerCase();
    if (mediaType !== expected) {
      return statusResponse(
        415,
        `the body of the request was in an unknown format - accepted media types include: ` +
          expected,
      );
    }
    const body = parseJson(record.body);
    if (!isObject(body)) {
      return statusResponse(400, "the request body is not a JSON object");
    }
    return body;
  }

  #conflictsWith(stored: JsonObject, body: JsonObject, target: Target): Response | undefined {
    const wanted = isObject(body.metadata)
      ? stringField(body.metadata, "resourceVersion")
      : undefined;
    if (wanted === undefined || wanted === stringField(metadataOf(stored), "resourceVersion")) {
      return undefined;
    }
    return statusResponse(
      409,
      `Operation cannot be fulfilled on ${qualified(target)} "${target.name ?? ""}": the ` +
        `object has been modified; please apply your changes to the latest version and try again`,
      { target },
    );
  }

  #validateEvent(event: JsonObject): Response | undefined {
    const message = event.message;
    if (typeof message === "string" && new TextEncoder().encode(message).length > 1024) {
      return statusResponse(
        422,
        `Event "${stringField(metadataOf(event), "name") ?? ""}" is invalid: message: ` +
          `Too long: may not be more than ${EVENT_MESSAGE_LIMIT} bytes`,
      );
    }
    return undefined;
  }

  #patch(key: string, target: Target, record: RecordedRequest): Response {
    const body = this.#writeBody(record, MERGE_PATCH);
    if (body instanceof Response) return body;
    const stored = this.#objects.get(key);
    if (stored === undefined) return notFound(target);
    const conflict = this.#conflictsWith(stored, body, target);
    if (conflict !== undefined) return conflict;
    const patched = applyMergePatch(stored, body);
    if (!isObject(patched)) return statusResponse(400, "the patch does not leave an object");
    const metadata = metadataOf(patched);
    metadata.name = target.name ?? null;
    metadata.uid = metadataOf(stored).uid ?? null;
    if (target.kind === "event") {
      const invalid = this.#validateEvent(patched);
      if (invalid !== undefined) return invalid;
    }
    return objectResponse(this.#store(key, patched));
  }

  #replace(key: string, target: Target, record: RecordedRequest): Response {
    const body = this.#writeBody(record, JSON_TYPE);
    if (body instanceof Response) return body;
    const stored = this.#objects.get(key);
    if (stored === undefined) return notFound(target);
    if (stringField(metadataOf(body), "name") !== target.name) {
      return statusResponse(400, "the name of the object does not match the name in the URL");
    }
    const conflict = this.#conflictsWith(stored, body, target);
    if (conflict !== undefined) return conflict;
    const invalid = this.#validateEvent(body);
    if (invalid !== undefined) return invalid;
    metadataOf(body).uid = metadataOf(stored).uid ?? null;
    return objectResponse(this.#store(key, body));
  }

  #createEvent(target: Target, record: RecordedRequest): Response {
    const body = this.#writeBody(record, JSON_TYPE);
    if (body instanceof Response) return body;
    const metadata = metadataOf(body);
    const name = stringField(metadata, "name");
    if (name === undefined || name === "") {
      return statusResponse(422, "Event is invalid: metadata.name: Required value");
    }
    const namespace = stringField(metadata, "namespace");
    if (namespace !== undefined && namespace !== target.namespace) {
      return statusResponse(
        400,
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    const key = `event/${target.namespace}/${name}`;
    if (this.#objects.has(key)) {
      return statusResponse(409, `events "${name}" already exists`, {
        reason: "AlreadyExists",
        target: { ...target, name },
      });
    }
    const invalid = this.#validateEvent(body);
    if (invalid !== undefined) return invalid;
    metadata.namespace = target.namespace ?? null;
    metadata.uid = crypto.randomUUID();
    metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    return objectResponse(this.#store(key, body), 201);
  }
}
