/**
 * The manifests in deploy/, read as a reviewer would: every document parses into the
 * Kubernetes API types with no unknown field; RBAC grants exactly the API calls the code
 * makes (found by running the code against the API fixture, not from a list here); the
 * ConfigMaps are what `deno task configmaps` makes of patterns/; the DaemonSet's args are
 * flags the program accepts, its mounts are where those flags look, and its capabilities
 * are enough for a real check while each iptables one is needed.
 */

import assert from "node:assert/strict";
import {
  dumpYaml,
  loadAllYaml,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1DaemonSet,
  type V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import { generateRuleset } from "../bench/ruleset.ts";
import { type Config, parseCommandLine, VERSION } from "../src/cli/config.ts";
import { createKubeApi, type KubeApi } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { EVENT_COMPONENT, EVENT_NAMESPACE } from "../src/kube/events.ts";
import { parseListenAddress } from "../src/metrics_server.ts";
import {
  ALLOWLIST_CONFIGMAPS,
  readAllowlistDir,
  renderAllowlistConfigMaps,
} from "../tools/gen_configmaps.ts";
import { ApiFixture, type RecordedRequest } from "./_support/api_fixture.ts";
import { ROOT, runMonitor, type RunResult } from "./_support/cli.ts";
import { netnsRequires, withNetns } from "./_support/netns.ts";
import { requires } from "./_support/requires.ts";

/** A parsed JSON/YAML value. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One document of a manifest file: as the API types read it, and every field as written. */
interface Manifest {
  file: string;
  typed: unknown;
  raw: { [key: string]: Json };
}

function isObject(value: unknown): value is { [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const RAW_GROUP = "aim-raw.invalid/";

/** The documents with every field kept: an API group client-node does not know stays raw. */
function rawDocuments(text: string): { [key: string]: Json }[] {
  const docs: unknown[] = loadAllYaml(
    text.replace(/^apiVersion: (\S+)$/gm, `apiVersion: ${RAW_GROUP}$1`),
  );
  return docs.map((doc) => {
    const plain: unknown = JSON.parse(JSON.stringify(doc));
    if (!isObject(plain) || typeof plain.apiVersion !== "string") {
      throw new Error("a document without apiVersion");
    }
    return { ...plain, apiVersion: plain.apiVersion.slice(RAW_GROUP.length) };
  });
}

const manifests: Manifest[] = (() => {
  const list: Manifest[] = [];
  for (
    const entry of [...Deno.readDirSync(`${ROOT}/deploy`)].sort((a, b) => a.name < b.name ? -1 : 1)
  ) {
    if (!entry.isFile || !/\.ya?ml$/.test(entry.name)) continue;
    const file = `deploy/${entry.name}`;
    const text = Deno.readTextFileSync(`${ROOT}/${file}`);
    const typed: unknown[] = loadAllYaml(text);
    const raw = rawDocuments(text);
    assert.equal(typed.length, raw.length);
    typed.forEach((doc, i) => list.push({ file, typed: doc, raw: raw[i] }));
  }
  return list;
})();

function only<T>(type: abstract new (...args: never[]) => T): T[] {
  return manifests.map((m) => m.typed).filter((doc): doc is T => doc instanceof type);
}

function one<T>(type: abstract new (...args: never[]) => T): T {
  const found = only(type);
  assert.equal(found.length, 1, `exactly one ${type.name}`);
  return found[0];
}

/** Paths of fields in `raw` that `known` lacks: fields the API types do not have. */
function unknownFields(raw: Json, known: Json, path = ""): string[] {
  if (Array.isArray(raw)) {
    if (!Array.isArray(known)) return [path];
    return raw.flatMap((item, i) => unknownFields(item, known[i] ?? null, `${path}[${i}]`));
  }
  if (!isObject(raw)) return [];
  if (!isObject(known)) return [path];
  return Object.entries(raw).flatMap(([key, value]) =>
    key in known ? unknownFields(value, known[key], `${path}.${key}`) : [`${path}.${key}`]
  );
}

Deno.test("every manifest is Kubernetes API objects with no unknown or ambiguous field", () => {
  assert.ok(manifests.length >= 8, `${manifests.length} documents`);
  for (const { file, typed, raw } of manifests) {
    const name = `${file} ${raw.kind}`;
    assert.ok(
      typed instanceof V1DaemonSet || typed instanceof V1ConfigMap ||
        typed instanceof V1ServiceAccount || typed instanceof V1ClusterRole ||
        typed instanceof V1ClusterRoleBinding || typed instanceof V1Role ||
        typed instanceof V1RoleBinding,
      `${name} is a known API type`,
    );
    const roundTrip = rawDocuments(dumpYaml(typed))[0];
    assert.deepEqual(unknownFields(raw, roundTrip), [], `${name}: fields the API does not know`);
    assert.ok(isObject(raw.metadata) && typeof raw.metadata.name === "string", name);
  }
  for (const file of new Set(manifests.map((m) => m.file))) {
    // Kubernetes reads YAML 1.1, where these plain words are booleans, not strings.
    const text = Deno.readTextFileSync(`${ROOT}/${file}`);
    assert.doesNotMatch(
      text,
      /(?:^|[:\-[,]\s*)(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)\s*(?:[,\]#]|$)/m,
      `${file} has a YAML 1.1 boolean word unquoted`,
    );
  }
});

Deno.test("the ConfigMaps are generated from patterns/ and hold exactly its files", async () => {
  const file = await Deno.readTextFile(`${ROOT}/deploy/allowlists.yaml`);
  assert.equal(file, await renderAllowlistConfigMaps(), "run `deno task configmaps`");
  const configMaps = only(V1ConfigMap);
  assert.equal(configMaps.length, ALLOWLIST_CONFIGMAPS.length);
  for (const { name, dir } of ALLOWLIST_CONFIGMAPS) {
    const configMap = configMaps.find((c) => c.metadata?.name === name);
    assert.ok(configMap, name);
    const files = await readAllowlistDir(`${ROOT}/${dir}`);
    assert.ok(files.size > 0);
    assert.deepEqual(configMap.data, Object.fromEntries(files), name);
  }
});

Deno.test("allowlist text of any shape survives the ConfigMap generator and a YAML reader", async () => {
  const root = await Deno.makeTempDir({ prefix: "aim-configmaps-" });
  const awkward: Record<string, string> = {
    global: '^-P INPUT ACCEPT$\n\n^-A FOO -m comment --comment "a: b # c" -j X$\n',
    nat: "   \n^a\t$ \n", // a line of spaces is a pattern; trailing blanks
    mangle: "^x$\r\n^y$\r\n", // CRLF
    filter: "  ^leading\n|pipe\n- dash\n'quote\n\\backslash\n", // no final newline below
    raw: "ünïcødé ✓ 😀\n\n\n",
    security: "",
  };
  try {
    for (const { dir } of ALLOWLIST_CONFIGMAPS) {
      await Deno.mkdir(`${root}/${dir}`, { recursive: true });
      for (const [name, content] of Object.entries(awkward)) {
        const text = name === "filter" ? content.slice(0, -1) : content;
        await Deno.writeTextFile(`${root}/${dir}/${name}`, text);
      }
      await Deno.writeTextFile(`${root}/${dir}/README`, "not an allowlist file");
    }
    const docs: unknown[] = loadAllYaml(await renderAllowlistConfigMaps(root));
    for (const doc of docs) {
      assert.ok(doc instanceof V1ConfigMap);
      const expected = { ...awkward, filter: awkward.filter.slice(0, -1) };
      assert.deepEqual(doc.data, expected);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** An API request as RBAC sees it. */
interface AccessRequest {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

/** Kubernetes' mapping of a REST request to an RBAC verb and resource. */
function accessOf(request: RecordedRequest): AccessRequest {
  const parts = request.path.split("/").filter((part) => part !== "");
  let group: string;
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 2) {
    group = "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 3) {
    group = parts[1];
    rest = parts.slice(3);
  } else {
    throw new Error(`not a resource path: ${request.path}`);
  }
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest;
  const watching = /(^|&)watch=(true|1)(&|$)/.test(request.query);
  const verbs: Record<string, string> = {
    GET: name === undefined ? (watching ? "watch" : "list") : "get",
    POST: "create",
    PUT: "update",
    PATCH: "patch",
    DELETE: name === undefined ? "deletecollection" : "delete",
  };
  const verb = verbs[request.method];
  if (verb === undefined) throw new Error(`unexpected method ${request.method}`);
  return {
    verb,
    group,
    resource: subresource === undefined ? resource : `${resource}/${subresource}`,
    namespace,
    name,
  };
}

/** Runs every method of the real KubeApi against the fixture; returns what reached it. */
async function apiCallsOfTheCode(): Promise<AccessRequest[]> {
  await using api = await ApiFixture.start();
  const node = "aks-nodepool1-0";
  api.seedCiliumNode(node);
  const uid = api.seedNode(node);
  const kube = createKubeApi(loadKubeConfig({ kubeconfig: api.kubeconfigPath }));
  const now = new Date();
  // Typed by KubeApi's keys: a new method does not compile until it is exercised here (or
  // marked as making no request).
  const exercise: { [Method in keyof KubeApi]: (() => Promise<unknown>) | "no request" } = {
    getCiliumNode: () => kube.getCiliumNode(node),
    patchCiliumNodeLabels: () => kube.patchCiliumNodeLabels(node, { "example.com/x": "y" }),
    getNode: () => kube.getNode(node),
    createEvent: () =>
      kube.createEvent({
        name: `${node}.1`,
        namespace: EVENT_NAMESPACE,
        node: { name: node, uid },
        reason: "Test",
        message: "test",
        type: "Warning",
        source: { component: EVENT_COMPONENT, host: node },
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
      }),
    patchEvent: () =>
      kube.patchEvent(EVENT_NAMESPACE, `${node}.1`, { count: 2, lastTimestamp: now, message: "x" }),
    close: "no request",
  };
  assert.deepEqual(Object.keys(kube).sort(), Object.keys(exercise).sort());
  try {
    for (const [method, call] of Object.entries(exercise)) {
      if (call === "no request") continue;
      await call().catch((error) => assert.fail(`${method}: ${error}`));
    }
  } finally {
    kube.close();
  }
  const requests = api.requests();
  assert.ok(requests.every((request) => request.status !== undefined && request.status < 300));
  return requests.map(accessOf);
}

/** The RBAC rules that apply to a service account, each with where it applies. */
function grantsFor(account: { name: string; namespace: string }) {
  const bound = (subjects: { kind: string; name: string; namespace?: string }[] | undefined) =>
    (subjects ?? []).some((s) =>
      s.kind === "ServiceAccount" && s.name === account.name && s.namespace === account.namespace
    );
  const grants: { rule: V1PolicyRule; namespace?: string; role: string }[] = [];
  const clusterRoles = only(V1ClusterRole);
  const roles = only(V1Role);
  for (const binding of only(V1ClusterRoleBinding)) {
    if (!bound(binding.subjects)) continue;
    const role = clusterRoles.find((r) => r.metadata?.name === binding.roleRef.name);
    assert.equal(binding.roleRef.kind, "ClusterRole");
    assert.ok(role, `ClusterRole ${binding.roleRef.name} exists`);
    for (const rule of role.rules ?? []) grants.push({ rule, role: binding.roleRef.name });
  }
  for (const binding of only(V1RoleBinding)) {
    if (!bound(binding.subjects)) continue;
    const namespace = binding.metadata?.namespace;
    const role = binding.roleRef.kind === "Role"
      ? roles.find((r) =>
        r.metadata?.name === binding.roleRef.name && r.metadata?.namespace === namespace
      )
      : clusterRoles.find((r) => r.metadata?.name === binding.roleRef.name);
    assert.ok(role, `${binding.roleRef.kind} ${binding.roleRef.name} exists in ${namespace}`);
    for (const rule of role.rules ?? []) {
      grants.push({ rule, namespace, role: binding.roleRef.name });
    }
  }
  return grants;
}

Deno.test({
  name: "RBAC grants exactly the API calls the code makes",
  ...requires({ commands: ["openssl"] }),
  fn: async () => {
    const daemonSet = one(V1DaemonSet);
    const account = {
      name: daemonSet.spec?.template.spec?.serviceAccountName ?? "default",
      namespace: daemonSet.metadata?.namespace ?? "default",
    };
    const serviceAccount = one(V1ServiceAccount);
    assert.equal(serviceAccount.metadata?.name, account.name);
    assert.equal(serviceAccount.metadata?.namespace, account.namespace);

    const calls = await apiCallsOfTheCode();
    assert.ok(calls.length >= 5);
    const grants = grantsFor(account);
    const used = new Set<string>();
    for (const call of calls) {
      const match = grants.find(({ rule, namespace }) =>
        (namespace === undefined || namespace === call.namespace) &&
        (rule.apiGroups ?? []).includes(call.group) &&
        (rule.resources ?? []).includes(call.resource) &&
        rule.verbs.includes(call.verb) &&
        (rule.resourceNames === undefined || rule.resourceNames.includes(call.name ?? ""))
      );
      assert.ok(match, `no RBAC rule allows ${JSON.stringify(call)}`);
      used.add(JSON.stringify([match.role, call.group, call.resource, call.verb]));
    }
    for (const { rule, role } of grants) {
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) {
            assert.notEqual(verb, "*");
            assert.ok(
              used.has(JSON.stringify([role, group, resource, verb])),
              `${role} grants ${verb} on ${resource}.${group || "core"}, which the code never uses`,
            );
          }
        }
      }
    }
  },
});

Deno.test("only the KubeApi edge talks to the API server", () => {
  const walk = (dir: string): string[] =>
    [...Deno.readDirSync(dir)].flatMap((e) =>
      e.isDirectory ? walk(`${dir}/${e.name}`) : e.name.endsWith(".ts") ? [`${dir}/${e.name}`] : []
    );
  for (const file of [`${ROOT}/main.ts`, ...walk(`${ROOT}/src`)]) {
    const text = Deno.readTextFileSync(file);
    // The API classes are made in client.ts only, which the RBAC test runs method by method.
    if (!file.endsWith("/src/kube/client.ts")) {
      assert.doesNotMatch(text, /makeApiClient|CoreV1Api|CustomObjectsApi|EventsV1Api/, file);
    }
    // A raw HTTP request only in client-node's HttpLibrary, which sends what those classes build.
    if (/\bfetch\(/.test(text)) {
      assert.match(text, /\bHttpLibrary\b/, `${file} makes requests the RBAC test does not see`);
    }
  }
});

/** The DaemonSet's container, its parsed args and its spec. */
function daemon() {
  const daemonSet = one(V1DaemonSet);
  const pod = daemonSet.spec?.template.spec;
  assert.ok(pod);
  assert.equal(pod.containers.length, 1);
  const container = pod.containers[0];
  const parsed = parseCommandLine(container.args ?? [], { NODE_NAME: "node-1" });
  assert.equal(parsed.kind, "run", parsed.kind === "exit" ? parsed.stderr : "");
  const config: Config = (parsed as { config: Config }).config;
  return { daemonSet, pod, container, config };
}

function trimSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

/** CPU cores or bytes of a Kubernetes quantity (the suffixes used here). */
function quantity(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(value);
  assert.ok(match, `quantity ${value}`);
  const scale: Record<string, number> = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  return Number(match[1]) * (match[2] === undefined ? 1 : scale[match[2]]);
}

Deno.test("the DaemonSet runs flags the program accepts, with its inputs where they look", () => {
  const { daemonSet, pod, container, config } = daemon();
  assert.equal(config.once, false, "a daemon, not a one-shot check");
  assert.equal(config.dryRun, false);
  assert.equal(pod.hostNetwork, true, "the node's rules are in the host network namespace");
  assert.ok(!pod.hostPID && !pod.hostIPC);
  assert.equal(container.image?.split(":").at(-1), VERSION);

  const nodeName = container.env?.find((e) => e.name === "NODE_NAME");
  assert.equal(nodeName?.valueFrom?.fieldRef?.fieldPath, "spec.nodeName");

  const mountOf = (volume: string) => container.volumeMounts?.find((m) => m.name === volume);
  const volumes = pod.volumes ?? [];
  for (const { name, family, mountPath } of ALLOWLIST_CONFIGMAPS) {
    const volume = volumes.find((v) => v.configMap?.name === name);
    assert.ok(volume, `a volume of ConfigMap ${name}`);
    const mount = mountOf(volume.name);
    assert.equal(mount?.mountPath, mountPath);
    assert.equal(mount?.readOnly, true);
    const flag = family === "ipv4" ? config.input : config.input6;
    assert.equal(trimSlash(flag), mountPath, `-input${family === "ipv6" ? "6" : ""}`);
    assert.ok(only(V1ConfigMap).some((c) => c.metadata?.name === name));
  }
  assert.equal(config.ipv6, true, "the IPv6 allowlists are mounted, so they are used");

  const hostPaths = volumes.filter((v) => v.hostPath !== undefined);
  if (config.checkMap) {
    assert.equal(hostPaths.length, 1);
    const mount = mountOf(hostPaths[0].name);
    assert.ok(mount);
    assert.equal(mount.readOnly, true);
    assert.equal(hostPaths[0].hostPath?.path, mount.mountPath, "the same path as on the host");
    assert.ok(config.mapPath.startsWith(`${mount.mountPath}/`), "-mapPath is in the mount");
  } else {
    assert.equal(hostPaths.length, 0, "no host path without -checkMap");
  }

  assert.ok(config.metricsAddress, "metrics on, for the liveness probe");
  const port = parseListenAddress(config.metricsAddress).port;
  const metricsPort = container.ports?.find((p) => p.containerPort === port);
  assert.ok(metricsPort, `port ${port} is declared`);
  const probe = container.livenessProbe?.httpGet;
  assert.equal(probe?.path, "/healthz");
  assert.ok(probe?.port === port || probe?.port === metricsPort.name);
  assert.equal(probe?.host, undefined, "the kubelet probes the pod IP: the node IP");
  // Listening on the node IP only: HOST_IP from the downward API, expanded by the kubelet.
  assert.equal(parseListenAddress(config.metricsAddress).hostname, "$(HOST_IP)");
  const hostIp = container.env?.find((e) => e.name === "HOST_IP");
  assert.equal(hostIp?.valueFrom?.fieldRef?.fieldPath, "status.hostIP");
  assert.equal(metricsPort.hostPort, port, "hostNetwork: hostPort is the container port");
  assert.equal(
    daemonSet.spec?.template.metadata?.annotations?.["prometheus.io/port"],
    String(port),
    "Prometheus scrapes the port served",
  );
  assert.ok(!CILIUM_PORTS.includes(port), `port ${port} is one of Cilium's`);
  assert.equal(daemonSet.metadata?.namespace, one(V1ServiceAccount).metadata?.namespace);

  const { requests, limits } = container.resources ?? {};
  for (const resource of ["cpu", "memory"]) {
    const request = requests?.[resource];
    const limit = limits?.[resource];
    assert.ok(request && limit, `${resource} request and limit`);
    assert.ok(quantity(request) <= quantity(limit), resource);
  }
});

/**
 * The TCP ports Cilium uses on a node: the "ports available on each node" of Cilium's
 * system requirements, and Hubble's metrics server (`hubble-metrics-server: ":9965"`).
 */
const CILIUM_PORTS = [
  4240,
  4244,
  4245,
  4250,
  4251,
  6060,
  6061,
  6062,
  9878,
  9879,
  9890,
  9891,
  9893,
  9901,
  9962,
  9963,
  9964,
  9965,
];

/** The capabilities the code needs: iptables reads, plus the BPF map with -checkMap. */
function neededCapabilities(config: Config): string[] {
  return ["NET_ADMIN", "NET_RAW", ...(config.checkMap ? ["SYS_ADMIN"] : [])].sort();
}

Deno.test("the container is root with only the needed capabilities and nothing else", () => {
  const { container, config } = daemon();
  const security = container.securityContext;
  assert.ok(security);
  assert.deepEqual(security.capabilities?.drop, ["ALL"]);
  assert.deepEqual([...(security.capabilities?.add ?? [])].sort(), neededCapabilities(config));
  assert.equal(security.runAsUser, 0);
  assert.equal(security.privileged, false);
  assert.equal(security.allowPrivilegeEscalation, false);
  assert.equal(security.readOnlyRootFilesystem, true);
  assert.equal(security.seccompProfile?.type, "RuntimeDefault");
});

/** Runs a one-shot check of the namespace's rules with only `capabilities`, as the pod would. */
function checkWithCapabilities(ns: string, capabilities: string[]): Promise<RunResult> {
  const bounding = ["-all", ...capabilities.map((c) => `+${c.toLowerCase()}`)].join(",");
  return runMonitor(
    ["-once", "-dryRun", "-output", "json", "-input=patterns/ipv4", "-ipv6"].concat(
      "-input6=patterns/ipv6",
    ),
    {
      prefix: [
        "ip",
        "netns",
        "exec",
        ns,
        "setpriv",
        "--no-new-privs",
        `--bounding-set=${bounding}`,
        "--inh-caps=-all",
        "--",
      ],
    },
  );
}

function errorsOf(result: RunResult): { kind: string; source?: string; message: string }[] {
  const report: unknown = JSON.parse(result.stdout);
  assert.ok(isObject(report) && Array.isArray(report.errors), result.stderr);
  return report.errors.map((error) => {
    assert.ok(isObject(error));
    return {
      kind: String(error.kind),
      source: error.source === undefined ? undefined : String(error.source),
      message: String(error.message),
    };
  });
}

Deno.test({
  name:
    "the DaemonSet's capabilities read both backends; without NET_ADMIN or NET_RAW a read fails",
  ignore: netnsRequires({ backends: ["nft", "legacy"], families: ["ipv4"] }).ignore ||
    requires({ commands: ["setpriv"] }).ignore,
  fn: () =>
    withNetns(async (ns) => {
      await ns.restore("ipv4", "nft", generateRuleset({ services: 5, family: "ipv4" }).dump);
      await ns.restore(
        "ipv4",
        "legacy",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.1/32 -j DROP\nCOMMIT\n",
      );
      const capabilities = daemon().container.securityContext?.capabilities?.add ?? [];

      const granted = await checkWithCapabilities(ns.name, capabilities);
      assert.deepEqual(errorsOf(granted), [], granted.stderr);
      const sources = (JSON.parse(granted.stdout).families as { source: string }[]).map((f) =>
        f.source
      );
      assert.ok(sources.includes("iptables-legacy-save (legacy)"), sources.join());
      assert.ok(sources.includes("iptables-nft-save (nf_tables)"), sources.join());

      for (const dropped of ["NET_ADMIN", "NET_RAW"]) {
        assert.ok(capabilities.includes(dropped));
        const fewer = await checkWithCapabilities(
          ns.name,
          capabilities.filter((c) => c !== dropped),
        );
        assert.equal(fewer.code, 2, `without ${dropped}`);
        const errors = errorsOf(fewer);
        assert.ok(
          errors.length > 0 && errors.every((e) => e.kind === "iptables" || e.kind === "nft"),
          dropped,
        );
        assert.ok(errors.some((e) => /not permitted|root|CAP_NET_ADMIN/.test(e.message)), dropped);
        // nft (the nft view) needs CAP_NET_ADMIN, and nothing else.
        assert.equal(
          errors.some((e) => e.kind === "nft"),
          dropped === "NET_ADMIN",
          `${dropped}: ${JSON.stringify(errors)}`,
        );
      }
    }),
});

Deno.test({
  name:
    "with the DaemonSet's capabilities bpftool reads a pinned counter through a read-only mount",
  ...requires({ root: true, commands: ["bpftool", "setpriv", "mount", "umount"] }),
  fn: async () => {
    const capabilities = daemon().container.securityContext?.capabilities?.add ?? [];
    const dir = await Deno.makeTempDir({ prefix: "aim-bpffs-" });
    const run = async (command: string, args: string[]) => {
      const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
        .output();
      const text = new TextDecoder().decode(output.stdout);
      if (!output.success) {
        throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
      }
      return text;
    };
    await Deno.mkdir(`${dir}/fs`);
    await Deno.mkdir(`${dir}/ro`);
    await run("mount", ["-t", "bpf", "bpf", `${dir}/fs`]);
    try {
      await Deno.mkdir(`${dir}/fs/block-iptables`);
      const map = "block-iptables/iptables_block_event_counter";
      await run("bpftool", [
        ...["map", "create", `${dir}/fs/${map}`, "type", "array", "key", "4", "value", "8"],
        ...["entries", "2", "name", "aim_counter"],
      ]);
      await run("bpftool", [
        ...["map", "update", "pinned", `${dir}/fs/${map}`, "key", "0", "0", "0", "0"],
        ...["value", "7", "0", "0", "0", "0", "0", "0", "0"],
      ]);
      await run("mount", ["--bind", "-o", "ro", `${dir}/fs`, `${dir}/ro`]);
      try {
        const bounding = ["-all", ...capabilities.map((c) => `+${c.toLowerCase()}`)].join(",");
        const out = await run("setpriv", [
          ...["--no-new-privs", `--bounding-set=${bounding}`, "--inh-caps=-all", "--"],
          ...[
            "bpftool",
            "-j",
            "map",
            "lookup",
            "pinned",
            `${dir}/ro/${map}`,
            "key",
            "0",
            "0",
            "0",
            "0",
          ],
        ]);
        assert.deepEqual(JSON.parse(out).value, [
          "0x07",
          "0x00",
          "0x00",
          "0x00",
          "0x00",
          "0x00",
          "0x00",
          "0x00",
        ]);
      } finally {
        await run("umount", [`${dir}/ro`]);
      }
    } finally {
      await run("umount", [`${dir}/fs`]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
