/**
 * The Kubernetes client edge: where the configuration comes from, the rotating
 * service-account token, the requests on the wire, and how failures are reported.
 */

import assert from "node:assert/strict";
import { ApiFixture } from "./_support/api_fixture.ts";
import { requires } from "./_support/requires.ts";
import { kubeconfigText } from "./_support/tls.ts";
import { createKubeApi, type KubeApi } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { KubeApiError } from "../src/kube/errors.ts";

const needs = requires({ commands: ["openssl"] });

function envOf(values: Record<string, string>): (name: string) => string | undefined {
  return (name) => values[name];
}

async function rejection(promise: Promise<unknown>): Promise<KubeApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KubeApiError, `not a KubeApiError: ${error}`);
    return error;
  }
  throw new Error("the call did not fail");
}

async function withApi(
  body: (api: ApiFixture, kube: KubeApi) => Promise<void>,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const api = await ApiFixture.start();
  const kube = createKubeApi(loadKubeConfig({ kubeconfig: api.kubeconfigPath }), options);
  try {
    await body(api, kube);
  } finally {
    kube.close();
    await api.stop();
  }
}

Deno.test("config: -kubeconfig wins, then KUBECONFIG (missing entries skipped)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aim-kubeconfig-" });
  try {
    const first = `${dir}/first`;
    const second = `${dir}/second`;
    const ca = "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";
    await Deno.writeTextFile(
      first,
      kubeconfigText({ server: "https://10.0.0.1", caCert: ca, token: "a" }),
    );
    await Deno.writeTextFile(
      second,
      kubeconfigText({ server: "https://10.0.0.2", caCert: ca, token: "b" }),
    );
    const env = envOf({ KUBECONFIG: `${dir}/missing:${second}` });
    const fromFlag = loadKubeConfig({ kubeconfig: first, env });
    assert.equal(fromFlag.getCurrentCluster()?.server, "https://10.0.0.1");
    const fromEnv = loadKubeConfig({ env });
    assert.equal(fromEnv.getCurrentCluster()?.server, "https://10.0.0.2");
    assert.throws(
      () => loadKubeConfig({ env: envOf({ KUBECONFIG: `${dir}/missing` }) }),
      /KUBECONFIG=.*missing: none of these files exists/,
    );
    assert.throws(
      () => loadKubeConfig({ kubeconfig: `${dir}/nope`, env }),
      /cannot load -kubeconfig .*nope/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: outside a pod without a kubeconfig is one clear error", async () => {
  assert.throws(
    () => loadKubeConfig({ env: envOf({}) }),
    /no Kubernetes configuration: -kubeconfig not given, KUBECONFIG unset, and not running in a pod/,
  );
  const dir = await Deno.makeTempDir({ prefix: "aim-sa-" });
  try {
    const env = envOf({ KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" });
    assert.throws(
      () => loadKubeConfig({ env, serviceAccountDir: dir }),
      new RegExp(`${dir}/token is missing`),
    );
    await Deno.writeTextFile(`${dir}/token`, "t");
    await Deno.writeTextFile(`${dir}/ca.crt`, "pem");
    const v6 = envOf({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" });
    const config = loadKubeConfig({ env: v6, serviceAccountDir: dir });
    assert.equal(config.getCurrentCluster()?.server, "https://[fd00::1]:443");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: insecure-skip-tls-verify is refused up front", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aim-kubeconfig-" });
  try {
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "c",
        cluster: { server: "https://10.0.0.1", "insecure-skip-tls-verify": true },
      }],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    };
    await Deno.writeTextFile(`${dir}/config`, JSON.stringify(config));
    assert.throws(
      () => createKubeApi(loadKubeConfig({ kubeconfig: `${dir}/config` })),
      /insecure-skip-tls-verify is not supported/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "client: in a pod, a rotated service-account token is used at the next request",
  ...needs,
  async fn() {
    const api = await ApiFixture.start({ token: "token-1" });
    const dir = await Deno.makeTempDir({ prefix: "aim-sa-" });
    let kube: KubeApi | undefined;
    try {
      await Deno.writeTextFile(`${dir}/token`, "token-1");
      await Deno.copyFile(api.caCertPath, `${dir}/ca.crt`);
      const port = new URL(api.url).port;
      const env = envOf({ KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port });
      kube = createKubeApi(loadKubeConfig({ env, serviceAccountDir: dir }));
      api.seedNode("node-1", "uid-1");
      assert.deepEqual(await kube.getNode("node-1"), { uid: "uid-1" });
      // The kubelet rewrites the file; the API server stops accepting the old token.
      await Deno.writeTextFile(`${dir}/token`, "token-2\n");
      api.token = "token-2";
      assert.deepEqual(await kube.getNode("node-1"), { uid: "uid-1" });
      const sent = api.requests().map((request) => request.authorization);
      assert.deepEqual(sent, ["Bearer token-1", "Bearer token-2"]);
      api.token = "token-3";
      const error = await rejection(kube.getNode("node-1"));
      assert.equal(error.status, 401);
      assert.equal(error.retriable, false);
      assert.match(
        error.message,
        /^get nodes "node-1": unauthorized \(401\): .*service-account token/,
      );
    } finally {
      kube?.close();
      await api.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "client: labels go out as a JSON merge patch; null removes a label",
  ...needs,
  async fn() {
    await withApi(async (api, kube) => {
      api.seedCiliumNode("node-1", { a: "1", b: "1" });
      const result = await kube.patchCiliumNodeLabels("node-1", { a: null, b: "2", c: "3" });
      assert.deepEqual(result.labels, { b: "2", c: "3" });
      assert.deepEqual(api.labels("node-1"), { b: "2", c: "3" });
      const [patch] = api.requests({ method: "PATCH" });
      assert.equal(patch.path, "/apis/cilium.io/v2/ciliumnodes/node-1");
      assert.equal(patch.contentType, "application/merge-patch+json");
      assert.deepEqual(JSON.parse(patch.body), {
        metadata: { labels: { a: null, b: "2", c: "3" } },
      });
      const read = await kube.getCiliumNode("node-1");
      assert.equal(read.resourceVersion, result.resourceVersion);
      assert.equal(api.requests({ method: "GET" })[0].query, "resourceVersion=0");
    });
  },
});

Deno.test({
  name: "client: an Event is created and patched with the fields kubectl shows",
  ...needs,
  async fn() {
    await withApi(async (api, kube) => {
      const at = new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678));
      const created = await kube.createEvent({
        name: "node-1.1735787045",
        namespace: "default",
        node: { name: "node-1", uid: "uid-1" },
        reason: "UnexpectedIPTablesRules",
        message: "Node has unexpected iptables rules",
        type: "Warning",
        source: { component: "azure-iptables-monitor", host: "node-1" },
        count: 1,
        firstTimestamp: at,
        lastTimestamp: at,
      });
      assert.equal(created.name, "node-1.1735787045");
      assert.equal(created.count, 1);
      const [post] = api.requests({ method: "POST" });
      assert.equal(post.path, "/api/v1/namespaces/default/events");
      assert.equal(post.contentType, "application/json");
      const body = JSON.parse(post.body);
      assert.deepEqual(body.involvedObject, {
        kind: "Node",
        apiVersion: "v1",
        name: "node-1",
        uid: "uid-1",
      });
      assert.equal(body.firstTimestamp, "2025-01-02T03:04:05.000Z");
      const later = new Date(at.getTime() + 300_000);
      const patched = await kube.patchEvent("default", created.name, {
        count: 2,
        lastTimestamp: later,
        message: "again",
      });
      assert.equal(patched.count, 2);
      const [stored] = api.events();
      assert.equal(stored.lastTimestamp, "2025-01-02T03:09:05Z");
      assert.equal(stored.message, "again");
      const missing = await rejection(
        kube.patchEvent("default", "gone.1", { count: 2, lastTimestamp: later, message: "x" }),
      );
      assert.equal(missing.notFound, true);
    });
  },
});

Deno.test({
  name: "client: an answer without the fields we read is a clear error",
  ...needs,
  async fn() {
    await withApi(async (api, kube) => {
      api.seedNode("node-1", "");
      const error = await rejection(kube.getNode("node-1"));
      assert.equal(error.kind, "response");
      assert.match(error.message, /^get nodes "node-1": unexpected answer at metadata\.uid/);
    });
  },
});

Deno.test({
  name: "client: every request has a timeout; a refused connection is a network error",
  ...needs,
  async fn() {
    await withApi(async (api, kube) => {
      api.seedNode("node-1");
      api.inject({ kind: "slow", delayMs: 10_000 }, { times: 1 });
      const slow = await rejection(kube.getNode("node-1"));
      assert.equal(slow.kind, "timeout");
      assert.equal(slow.retriable, true);
      assert.match(slow.message, /^get nodes "node-1": no answer within 0\.3 s$/);
      api.inject({ kind: "stall" }, { times: 1 });
      const stalled = await rejection(kube.getNode("node-1"));
      assert.equal(stalled.kind, "timeout", "the timeout covers the body too");
      await api.stop();
      const refused = await rejection(kube.getNode("node-1"));
      assert.equal(refused.kind, "network");
      assert.match(refused.message, /^get nodes "node-1": connection failed: /);
    }, { timeoutMs: 300 });
  },
});

Deno.test({
  name: "client: a 429 carries Retry-After, a 409 is a conflict, a 500 is retriable",
  ...needs,
  async fn() {
    await withApi(async (api, kube) => {
      api.seedCiliumNode("node-1");
      api.inject({ kind: "status", status: 429, retryAfter: "7" }, { times: 1 });
      const limited = await rejection(kube.getCiliumNode("node-1"));
      assert.equal(limited.status, 429);
      assert.equal(limited.retryAfterMs, 7000);
      assert.equal(limited.retriable, true);
      assert.match(limited.message, /HTTP 429: injected TooManyRequests/);
      api.inject({ kind: "status", status: 409 }, { times: 1 });
      const conflict = await rejection(kube.getCiliumNode("node-1"));
      assert.equal(conflict.conflict, true);
      assert.equal(conflict.retriable, false);
      api.inject({ kind: "status", status: 500 }, { times: 1 });
      assert.equal((await rejection(kube.getCiliumNode("node-1"))).retriable, true);
      assert.equal((await kube.getCiliumNode("node-1")).name, "node-1");
    });
  },
});

Deno.test({
  name: "fixture: listens on another local address with a certificate for it",
  ...needs,
  async fn() {
    const api = await ApiFixture.start({ hostname: "127.0.0.2" });
    const kube = createKubeApi(loadKubeConfig({ kubeconfig: api.kubeconfigPath }));
    try {
      assert.match(api.url, /^https:\/\/127\.0\.0\.2:\d+$/);
      api.seedNode("node-1", "uid-1");
      assert.deepEqual(await kube.getNode("node-1"), { uid: "uid-1" });
    } finally {
      kube.close();
      await api.stop();
    }
  },
});
