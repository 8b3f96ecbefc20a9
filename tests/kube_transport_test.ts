/**
 * The API transport against a misbehaving HTTPS API: redirects (to plain HTTP and to
 * another host), a certificate from a CA the process trusts through `DENO_CERT` but the
 * kubeconfig does not name, a certificate for another name, oversized answers, and
 * shutdown while a request hangs. The real `@kubernetes/client-node` sends every request.
 */

import assert from "node:assert/strict";
import { ApiFixture } from "./_support/api_fixture.ts";
import { ROOT, runCaptured, runMonitor } from "./_support/cli.ts";
import { requires } from "./_support/requires.ts";
import { kubeconfigText, makeTestPki } from "./_support/tls.ts";
import { Tripwire } from "./_support/tripwire.ts";
import { createKubeApi, type KubeApi } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { KubeApiError } from "../src/kube/errors.ts";
import { MAX_RESPONSE_BYTES } from "../src/kube/transport.ts";

const needs = requires({ commands: ["openssl"] });
const LABEL = "kubernetes.azure.com/user-iptables-rules";

async function rejection(promise: Promise<unknown>): Promise<KubeApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KubeApiError, `not a KubeApiError: ${error}`);
    return error;
  }
  throw new Error("the call did not fail");
}

function clientFor(api: ApiFixture, timeoutMs?: number): KubeApi {
  return createKubeApi(loadKubeConfig({ kubeconfig: api.kubeconfigPath }), { timeoutMs });
}

Deno.test({
  name: "transport: 301/302/307/308 to http:// or another host are errors; nothing goes there",
  ...needs,
  async fn() {
    const api = await ApiFixture.start();
    const plain = Tripwire.start("127.0.0.1");
    const elsewhere = Tripwire.start("127.0.0.2");
    const kube = clientFor(api);
    try {
      api.seedCiliumNode("node-1", { [LABEL]: "true" });
      const targets = [
        `http://${plain.address}/apis/cilium.io/v2/ciliumnodes/node-1`,
        `https://${elsewhere.address}/apis/cilium.io/v2/ciliumnodes/node-1`,
      ];
      for (const status of [301, 302, 307, 308] as const) {
        for (const location of targets) {
          api.inject({ kind: "redirect", status, location }, { times: 2 });
          const patch = await rejection(kube.patchCiliumNodeLabels("node-1", { [LABEL]: "false" }));
          assert.equal(patch.status, status);
          assert.equal(patch.retriable, false, "a redirect is not tried again");
          assert.ok(patch.message.includes(`answered ${status}`), patch.message);
          assert.ok(patch.message.includes(location), patch.message);
          assert.match(patch.message, /^patch ciliumnodes\.cilium\.io "node-1": .*not followed/);
          const read = await rejection(kube.getCiliumNode("node-1"));
          assert.equal(read.status, status);
        }
      }
      assert.equal(api.requests({ method: "PATCH" }).length, 8, "each PATCH reached the API once");
      assert.equal(api.labels("node-1")?.[LABEL], "true", "the label was never written");
      assert.equal(plain.connections, 0, "nothing connected to the http:// target");
      assert.equal(elsewhere.connections, 0, "nothing connected to the other host");
      // The same client still works once the server stops redirecting.
      await kube.patchCiliumNodeLabels("node-1", { [LABEL]: "false" });
      assert.equal(api.labels("node-1")?.[LABEL], "false");
    } finally {
      kube.close();
      await plain.stop();
      await elsewhere.stop();
      await api.stop();
    }
  },
});

Deno.test({
  name: "transport: a certificate from another CA is refused; nothing is sent",
  ...needs,
  async fn() {
    const api = await ApiFixture.start({ certificate: "foreign-ca" });
    const kube = clientFor(api);
    try {
      api.seedCiliumNode("node-1");
      const error = await rejection(kube.patchCiliumNodeLabels("node-1", { [LABEL]: "true" }));
      assert.equal(error.kind, "untrusted");
      assert.equal(error.retriable, false);
      assert.match(error.message, /not signed by the cluster's CA/);
      assert.deepEqual(api.requests(), [], "no request reached the server");
      assert.equal(api.labels("node-1")?.[LABEL], undefined);
    } finally {
      kube.close();
      await api.stop();
    }
  },
});

Deno.test({
  name: "transport: a certificate from the cluster's CA but for another name is refused",
  ...needs,
  async fn() {
    const api = await ApiFixture.start({ certificate: "wrong-name" });
    const kube = clientFor(api);
    try {
      api.seedCiliumNode("node-1");
      const error = await rejection(kube.patchCiliumNodeLabels("node-1", { [LABEL]: "true" }));
      assert.equal(error.kind, "untrusted");
      assert.match(error.message, /certificate is not for this address/);
      assert.deepEqual(api.requests(), []);
      assert.equal(api.labels("node-1")?.[LABEL], undefined);
    } finally {
      kube.close();
      await api.stop();
    }
  },
});

Deno.test({
  name:
    "monitor: a CA trusted through DENO_CERT (or NODE_EXTRA_CA_CERTS, SSL_CERT_FILE) is refused",
  ...needs,
  async fn() {
    const api = await ApiFixture.start({ certificate: "foreign-ca" });
    const dir = await Deno.makeTempDir({ prefix: "aim-deno-cert-" });
    try {
      api.seedCiliumNode("node-1");
      const foreignCa = api.foreignCaCertPath!;
      // Control: with DENO_CERT, Deno itself (fetch) trusts this server.
      const control = await runCaptured(Deno.execPath(), [
        "eval",
        `const r = await fetch("${api.url}/api/v1/nodes/x"); console.log(r.status);`,
      ], { env: { DENO_CERT: foreignCa, NO_COLOR: "1" } });
      assert.equal(
        control.stdout.trim(),
        "401",
        `DENO_CERT must make Deno trust it:\n${control.stderr}`,
      );
      api.clearRequests();

      const rules = `${dir}/rules.txt`;
      await Deno.writeTextFile(
        rules,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 1.2.3.4/32 -j DROP\nCOMMIT\n",
      );
      await Deno.mkdir(`${dir}/allow`);
      const result = await runMonitor([
        "-once",
        `-kubeconfig=${api.kubeconfigPath}`,
        `-input=${dir}/allow`,
        `-rulesFile=${rules}`,
      ], {
        // Every way a process can be told to trust more CAs: Deno's, Node's, OpenSSL's.
        env: {
          DENO_CERT: foreignCa,
          NODE_EXTRA_CA_CERTS: foreignCa,
          SSL_CERT_FILE: foreignCa,
          DENO_TLS_CA_STORE: "mozilla,system",
          NODE_NAME: "node-1",
        },
      });
      assert.match(result.stderr, /not signed by the cluster's CA/, result.stderr);
      assert.deepEqual(api.requests(), [], "no request reached the server");
      assert.equal(api.labels("node-1")?.[LABEL], undefined, "the label was not written");
    } finally {
      await api.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function writeConfig(dir: string, cluster: Record<string, unknown>): Promise<string> {
  const path = `${dir}/config-${crypto.randomUUID()}`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster }],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    }),
  );
  return path;
}

Deno.test("transport: no CA, a CA that is not PEM, http://, proxy-url are refused up front", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aim-kubeconfig-" });
  try {
    const ca = btoa("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ server: "https://10.0.0.1" }, /the cluster has no CA: give certificate-authority/],
      [
        { server: "https://10.0.0.1", "certificate-authority-data": btoa("junk") },
        /CA is not a PEM certificate/,
      ],
      [
        { server: "http://10.0.0.1", "certificate-authority-data": ca },
        /is not https:\/\//,
      ],
      [
        {
          server: "https://10.0.0.1",
          "certificate-authority-data": ca,
          "proxy-url": "http://proxy:3128",
        },
        /proxy-url is not supported/,
      ],
    ];
    for (const [cluster, message] of cases) {
      const path = await writeConfig(dir, cluster);
      assert.throws(() => createKubeApi(loadKubeConfig({ kubeconfig: path })), message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "transport: a client certificate in the kubeconfig is sent; requests work",
  ...needs,
  async fn() {
    const api = await ApiFixture.start();
    const dir = await Deno.makeTempDir({ prefix: "aim-client-cert-" });
    let kube: KubeApi | undefined;
    try {
      const client = await makeTestPki(dir, [], { names: ["DNS:client"] });
      const config = JSON.parse(
        kubeconfigText({
          server: api.url,
          caCert: await Deno.readTextFile(api.caCertPath),
          token: api.token,
        }),
      );
      config.users[0].user["client-certificate-data"] = btoa(client.cert);
      config.users[0].user["client-key-data"] = btoa(client.key);
      await Deno.writeTextFile(`${dir}/config`, JSON.stringify(config));
      kube = createKubeApi(loadKubeConfig({ kubeconfig: `${dir}/config` }));
      api.seedNode("node-1", "uid-1");
      assert.deepEqual(await kube.getNode("node-1"), { uid: "uid-1" });
      assert.equal(api.requests()[0].authorization, `Bearer ${api.token}`);
    } finally {
      kube?.close();
      await api.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "transport: an answer over the size limit is an error, not a bigger buffer",
  ...needs,
  async fn() {
    const api = await ApiFixture.start();
    const kube = clientFor(api);
    try {
      api.seedCiliumNode("node-1", { big: "x".repeat(MAX_RESPONSE_BYTES + 1) });
      const error = await rejection(kube.getCiliumNode("node-1"));
      assert.match(error.message, /the answer is larger than 16 MiB/);
      api.seedCiliumNode("node-1");
      assert.equal((await kube.getCiliumNode("node-1")).name, "node-1");
    } finally {
      kube.close();
      await api.stop();
    }
  },
});

Deno.test({
  name: "transport: close() cuts off a request whose answer hangs",
  ...needs,
  async fn() {
    const api = await ApiFixture.start();
    const kube = clientFor(api, 60_000);
    try {
      api.seedNode("node-1");
      api.inject({ kind: "stall" }, { times: 1 });
      const pending = rejection(kube.getNode("node-1"));
      while (api.requests().length === 0) await new Promise((r) => setTimeout(r, 10));
      const closedAt = performance.now();
      kube.close();
      const error = await pending;
      assert.ok(performance.now() - closedAt < 1000, "the request ended at close()");
      assert.notEqual(error.kind, "status");
      // A later request opens a new connection.
      assert.ok((await kube.getNode("node-1")).uid !== "");
    } finally {
      kube.close();
      await api.stop();
    }
  },
});

Deno.test({
  name: "transport: after close() cuts off a slow request, nothing keeps the process alive",
  ...needs,
  async fn() {
    const api = await ApiFixture.start();
    const dir = await Deno.makeTempDir({ prefix: "aim-close-" });
    try {
      api.seedNode("node-1");
      api.inject({ kind: "slow", delayMs: 20_000 }, { path: "/api/v1/nodes/slow" });
      // A first request succeeds, so that the slow one could have reused its connection.
      const script = `${dir}/client.ts`;
      await Deno.writeTextFile(
        script,
        [
          `import { createKubeApi } from "${ROOT}/src/kube/client.ts";`,
          `import { loadKubeConfig } from "${ROOT}/src/kube/config.ts";`,
          `const kube = createKubeApi(loadKubeConfig({ kubeconfig: Deno.args[0] }), ` +
          `{ timeoutMs: 60_000 });`,
          `await kube.getNode("node-1");`,
          `const slow = kube.getNode("slow").catch((e) => console.log("cut:", e.kind));`,
          `setTimeout(() => kube.close(), 300);`,
          `await slow;`,
        ].join("\n"),
      );
      const started = performance.now();
      const result = await runCaptured(Deno.execPath(), [
        "run",
        "-A",
        `--config=${ROOT}/deno.json`,
        script,
        api.kubeconfigPath,
      ]);
      const elapsed = performance.now() - started;
      assert.equal(result.stdout.trim(), "cut: network", result.stderr);
      assert.ok(elapsed < 10_000, `the process ended ${Math.round(elapsed)} ms after start`);
      assert.equal(api.requests({ path: "/api/v1/nodes/slow" }).length, 1);
    } finally {
      await api.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "transport: an IPv6 API server address works",
  ...needs,
  async fn() {
    const api = await ApiFixture.start({ hostname: "::1" });
    const kube = clientFor(api);
    try {
      assert.match(api.url, /^https:\/\/\[::1\]:\d+$/);
      api.seedNode("node-1", "uid-1");
      assert.deepEqual(await kube.getNode("node-1"), { uid: "uid-1" });
    } finally {
      kube.close();
      await api.stop();
    }
  },
});

Deno.test("transport: a CA file that is a FIFO or too large is one clear error, never a wait", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aim-ca-file-" });
  try {
    const fifo = `${dir}/ca.fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    const big = `${dir}/ca-big.crt`;
    await Deno.writeTextFile(big, "-----BEGIN CERTIFICATE-----\n" + "A".repeat(2 << 20));
    for (const [path, message] of [[fifo, /not a regular file/], [big, /larger than 1024 KiB/]]) {
      const config = await writeConfig(dir, {
        server: "https://10.0.0.1",
        "certificate-authority": path,
      });
      assert.throws(
        () => createKubeApi(loadKubeConfig({ kubeconfig: config })),
        new RegExp(`cannot read ${path}: ${(message as RegExp).source}`),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "transport: a CA bundle (a CA being rotated) trusts each of its CAs",
  ...needs,
  async fn() {
    const api = await ApiFixture.start({ certificate: "foreign-ca" });
    const dir = await Deno.makeTempDir({ prefix: "aim-ca-bundle-" });
    let kube: KubeApi | undefined;
    try {
      const bundle = (await Deno.readTextFile(api.caCertPath)) +
        (await Deno.readTextFile(api.foreignCaCertPath!));
      await Deno.writeTextFile(
        `${dir}/config`,
        kubeconfigText({ server: api.url, caCert: bundle, token: api.token }),
      );
      kube = createKubeApi(loadKubeConfig({ kubeconfig: `${dir}/config` }));
      api.seedNode("node-1", "uid-1");
      assert.deepEqual(await kube.getNode("node-1"), { uid: "uid-1" });
    } finally {
      kube?.close();
      await api.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
