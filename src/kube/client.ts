import {
  type ConfigurationOptions,
  CoreV1Api,
  CustomObjectsApi,
  type HttpLibrary,
  type KubeConfig,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";
import { z } from "zod";
import { type ApiRequest, describeRequest, KubeApiError, toKubeApiError } from "./errors.ts";
import { NodeHttpsTransport } from "./transport.ts";

/** Upstream's limit: every API request gives up after 5 s. */
export const REQUEST_TIMEOUT_MS = 5_000;

/** The JSON merge patch media type (RFC 7386). */
export const MERGE_PATCH = "application/merge-patch+json";

/** The cluster-scoped Cilium resource that carries the label. */
export const CILIUM_NODES = { group: "cilium.io", version: "v2", plural: "ciliumnodes" } as const;

/** The labels of a CiliumNode, as the server has them. */
export interface CiliumNodeLabels {
  name: string;
  labels: Readonly<Record<string, string>>;
  resourceVersion: string | undefined;
}

/** A core/v1 Event about a Node, in the shape the reporter writes. */
export interface NodeEvent {
  name: string;
  namespace: string;
  node: { name: string; uid: string | undefined };
  reason: string;
  message: string;
  type: "Normal" | "Warning";
  source: { component: string; host?: string };
  count: number;
  firstTimestamp: Date;
  lastTimestamp: Date;
}

/** What the correlator changes on an Event that happened again. */
export interface EventRepeat {
  count: number;
  lastTimestamp: Date;
  message: string;
}

/** An Event as stored on the server. */
export interface EventRef {
  name: string;
  namespace: string;
  count: number;
  resourceVersion: string | undefined;
}

/**
 * The few API calls the monitor makes. Every method rejects only with a
 * {@linkcode KubeApiError}; none retries (the reporter decides that).
 */
export interface KubeApi {
  getCiliumNode(name: string): Promise<CiliumNodeLabels>;
  /** Merge-patches labels; a `null` value removes that label. */
  patchCiliumNodeLabels(
    name: string,
    labels: Readonly<Record<string, string | null>>,
  ): Promise<CiliumNodeLabels>;
  getNode(name: string): Promise<{ uid: string }>;
  createEvent(event: NodeEvent): Promise<EventRef>;
  patchEvent(namespace: string, name: string, repeat: EventRepeat): Promise<EventRef>;
  /** Closes the connections; a later call opens new ones. */
  close(): void;
}

const CiliumNodeSchema = z.object({
  metadata: z.object({
    name: z.string(),
    labels: z.record(z.string(), z.string()).nullish(),
    resourceVersion: z.string().optional(),
  }),
});

const NodeSchema = z.object({ metadata: z.object({ uid: z.string().min(1) }) });

const EventSchema = z.object({
  metadata: z.object({
    name: z.string(),
    namespace: z.string().optional(),
    resourceVersion: z.string().optional(),
  }),
  count: z.number().int().nullish(),
});

/** Kubernetes timestamps have whole seconds. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function rfc3339(date: Date): string {
  return wholeSeconds(date).toISOString().replace(".000Z", "Z");
}

function parseAnswer<T>(schema: z.ZodType<T>, value: unknown, request: ApiRequest): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue === undefined ? "" : ` at ${issue.path.join(".")}: ${issue.message}`;
  throw new KubeApiError(
    request,
    "response",
    `${describeRequest(request)}: unexpected answer${where}`,
  );
}

function resolved<T>(value: T): Observable<T> {
  return new Observable(Promise.resolve(value));
}

/**
 * Per-request client options: the transport, the timeout signal, extra query parameters
 * and the content type.
 */
function requestOptions(
  transport: HttpLibrary,
  signal: AbortSignal,
  extra: { query?: Record<string, string>; contentType?: string },
): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre(context: RequestContext): Observable<RequestContext> {
      context.setSignal(signal);
      for (const [key, value] of Object.entries(extra.query ?? {})) {
        context.setQueryParam(key, value);
      }
      // The generated patch methods pick application/json-patch+json; we send merge patches.
      if (extra.contentType !== undefined) {
        context.setHeaderParam("Content-Type", extra.contentType);
      }
      return resolved(context);
    },
    post(context: ResponseContext): Observable<ResponseContext> {
      return resolved(context);
    },
  };
  return { httpApi: transport, middleware: [middleware], middlewareMergeStrategy: "append" };
}

/** Options for {@linkcode createKubeApi}. */
export interface KubeApiOptions {
  /** Per-request timeout; defaults to {@linkcode REQUEST_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Hears every request's outcome: the HTTP status, `timeout`, `network`,
   * `untrusted`, ... (metrics). */
  onRequest?: (request: ApiRequest, result: string) => void;
}

/**
 * The {@linkcode KubeApi} over `@kubernetes/client-node` (its API classes, auth and
 * serialization; requests go out over `node:https` trusting only the cluster CA, see
 * `transport.ts`). Reads ask for `resourceVersion=0`, which the API server answers from
 * its watch cache instead of etcd: a few thousand nodes reading each check cost the
 * control plane little.
 * Throws when the configuration cannot be used (e.g. insecure-skip-tls-verify).
 */
export function createKubeApi(config: KubeConfig, options: KubeApiOptions = {}): KubeApi {
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const custom = config.makeApiClient(CustomObjectsApi);
  const core = config.makeApiClient(CoreV1Api);
  const transport = new NodeHttpsTransport(config);

  async function call<T>(
    request: ApiRequest,
    extra: { query?: Record<string, string>; contentType?: string },
    send: (options: ConfigurationOptions) => Promise<unknown>,
    schema: z.ZodType<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let answer: unknown;
    try {
      answer = await send(requestOptions(transport, controller.signal, extra));
      options.onRequest?.(request, "success");
    } catch (error) {
      const timedOut = controller.signal.aborted ? timeoutMs : undefined;
      const failure = toKubeApiError(error, request, timedOut, Date.now());
      options.onRequest?.(
        request,
        failure.status !== undefined ? String(failure.status) : failure.kind,
      );
      throw failure;
    } finally {
      clearTimeout(timer);
    }
    return parseAnswer(schema, answer, request);
  }

  function ciliumNodeView(value: z.infer<typeof CiliumNodeSchema>): CiliumNodeLabels {
    return {
      name: value.metadata.name,
      labels: value.metadata.labels ?? {},
      resourceVersion: value.metadata.resourceVersion,
    };
  }

  function eventRef(value: z.infer<typeof EventSchema>, namespace: string): EventRef {
    return {
      name: value.metadata.name,
      namespace: value.metadata.namespace ?? namespace,
      count: value.count ?? 1,
      resourceVersion: value.metadata.resourceVersion,
    };
  }

  const ciliumRequest = (verb: ApiRequest["verb"], name: string): ApiRequest => ({
    verb,
    resource: CILIUM_NODES.plural,
    group: CILIUM_NODES.group,
    name,
  });

  return {
    close() {
      transport.close();
    },

    async getCiliumNode(name) {
      const value = await call(
        ciliumRequest("get", name),
        { query: { resourceVersion: "0" } },
        (options) => custom.getClusterCustomObject({ ...CILIUM_NODES, name }, options),
        CiliumNodeSchema,
      );
      return ciliumNodeView(value);
    },

    async patchCiliumNodeLabels(name, labels) {
      const value = await call(
        ciliumRequest("patch", name),
        { contentType: MERGE_PATCH },
        (options) =>
          custom.patchClusterCustomObject(
            { ...CILIUM_NODES, name, body: { metadata: { labels } } },
            options,
          ),
        CiliumNodeSchema,
      );
      return ciliumNodeView(value);
    },

    async getNode(name) {
      const value = await call(
        { verb: "get", resource: "nodes", group: "", name },
        { query: { resourceVersion: "0" } },
        (options) => core.readNode({ name }, options),
        NodeSchema,
      );
      return { uid: value.metadata.uid };
    },

    async createEvent(event) {
      const value = await call(
        { verb: "create", resource: "events", group: "", namespace: event.namespace },
        {},
        (options) =>
          core.createNamespacedEvent({
            namespace: event.namespace,
            body: {
              apiVersion: "v1",
              kind: "Event",
              metadata: { name: event.name, namespace: event.namespace },
              involvedObject: {
                kind: "Node",
                apiVersion: "v1",
                name: event.node.name,
                uid: event.node.uid,
              },
              reason: event.reason,
              message: event.message,
              type: event.type,
              source: event.source,
              count: event.count,
              firstTimestamp: wholeSeconds(event.firstTimestamp),
              lastTimestamp: wholeSeconds(event.lastTimestamp),
            },
          }, options),
        EventSchema,
      );
      return eventRef(value, event.namespace);
    },

    async patchEvent(namespace, name, repeat) {
      const value = await call(
        { verb: "patch", resource: "events", group: "", name, namespace },
        { contentType: MERGE_PATCH },
        (options) =>
          core.patchNamespacedEvent({
            name,
            namespace,
            body: {
              count: repeat.count,
              lastTimestamp: rfc3339(repeat.lastTimestamp),
              message: repeat.message,
            },
          }, options),
        EventSchema,
      );
      return eventRef(value, namespace);
    },
  };
}
