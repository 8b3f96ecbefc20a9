/**
 * deploy/aks, the kustomize component that adds the monitor to an existing Cilium
 * DaemonSet as AKS runs it (an init container with -terminateOnSuccess and a sidecar),
 * rendered onto a Cilium DaemonSet and read as a reviewer would: Cilium's own containers
 * and volumes untouched, both containers' args accepted by the program's own flag
 * parser, their inputs mounted where the flags look, only the capabilities each needs,
 * and the monitor's roles bound to the service account the pod runs under.
 *
 * No kustomize binary is needed: the patch is applied here with a small strategic merge
 * (lists of containers, volumes, mounts and env merged by their key, as the API's patch
 * strategy says, new items first as kustomize puts them; everything else replaced),
 * which is all the patch uses. `kubectl kustomize` (kustomize v5.5) renders the same.
 */

import assert from "node:assert/strict";
import {
  loadAllYaml,
  V1ClusterRole,
  V1ClusterRoleBinding,
  type V1Container,
  V1DaemonSet,
  type V1PodSpec,
  V1Role,
  V1RoleBinding,
} from "@kubernetes/client-node";
import { type Config, parseCommandLine, VERSION } from "../src/cli/config.ts";
import { ALLOWLIST_CONFIGMAPS } from "../tools/gen_configmaps.ts";
import { ROOT } from "./_support/cli.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const RAW_GROUP = "aim-raw.invalid/";

/** YAML documents as plain data (client-node's reader, every field kept). */
function plainDocuments(text: string): JsonObject[] {
  const docs: unknown[] = loadAllYaml(
    text.replace(/^apiVersion: (\S+)$/gm, `apiVersion: ${RAW_GROUP}$1`),
  );
  return docs.map((doc) => {
    const plain: unknown = JSON.parse(JSON.stringify(doc));
    assert.ok(isObject(plain) && typeof plain.apiVersion === "string", "a document");
    return { ...plain, apiVersion: plain.apiVersion.slice(RAW_GROUP.length) };
  });
}

/** The lists of a pod template that merge by a key (the API's patchMergeKey). */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  env: "name",
  ports: "containerPort",
};

/** A strategic merge of `patch` into `original`, for what deploy/aks uses. */
function strategicMerge(original: Json, patch: Json): Json {
  if (!isObject(patch) || !isObject(original)) return patch;
  const merged: JsonObject = { ...original };
  for (const [key, value] of Object.entries(patch)) {
    assert.ok(!key.startsWith("$"), `patch directive ${key} is not supported here`);
    if (value === null) {
      delete merged[key];
    } else if (key in MERGE_KEYS && Array.isArray(value) && Array.isArray(original[key])) {
      const mergeKey = MERGE_KEYS[key];
      const list = [...(original[key] as Json[])];
      const added: Json[] = [];
      for (const item of value) {
        assert.ok(isObject(item) && item[mergeKey] !== undefined, `${key} item has ${mergeKey}`);
        const at = list.findIndex((old) => isObject(old) && old[mergeKey] === item[mergeKey]);
        if (at === -1) added.push(item);
        else list[at] = strategicMerge(list[at], item);
      }
      merged[key] = [...added, ...list];
    } else {
      merged[key] = key in original ? strategicMerge(original[key], value) : value;
    }
  }
  return merged;
}

/** A Cilium agent DaemonSet as its Helm chart renders it, trimmed to what a patch meets. */
const CILIUM_DAEMONSET = `
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cilium
  namespace: kube-system
  labels:
    k8s-app: cilium
spec:
  selector:
    matchLabels:
      k8s-app: cilium
  template:
    metadata:
      labels:
        k8s-app: cilium
    spec:
      serviceAccountName: cilium
      automountServiceAccountToken: true
      hostNetwork: true
      priorityClassName: system-node-critical
      initContainers:
        - name: config
          image: quay.io/cilium/cilium:v1.16.6
          command: ["cilium-dbg", "build-config"]
        - name: mount-bpf-fs
          image: quay.io/cilium/cilium:v1.16.6
          args: ["mount | grep \\"/sys/fs/bpf type bpf\\" || mount -t bpf bpf /sys/fs/bpf"]
          command: ["/bin/bash", "-c", "--"]
          securityContext:
            privileged: true
          volumeMounts:
            - name: bpf-maps
              mountPath: /sys/fs/bpf
              mountPropagation: Bidirectional
        - name: clean-cilium-state
          image: quay.io/cilium/cilium:v1.16.6
          command: ["/init-container.sh"]
      containers:
        - name: cilium-agent
          image: quay.io/cilium/cilium:v1.16.6
          command: ["cilium-agent"]
          args: ["--config-dir=/tmp/cilium/config-map"]
          env:
            - name: K8S_NODE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
          ports:
            - name: prometheus
              containerPort: 9962
              hostPort: 9962
          volumeMounts:
            - name: bpf-maps
              mountPath: /sys/fs/bpf
              mountPropagation: HostToContainer
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
        - name: bpf-maps
          hostPath:
            path: /sys/fs/bpf
            type: DirectoryOrCreate
`;

const AKS = `${ROOT}/deploy/aks`;

interface Component {
  resources: string[];
  patches: { path: string; target: JsonObject }[];
}

function component(): Component {
  const [doc] = plainDocuments(Deno.readTextFileSync(`${AKS}/kustomization.yaml`));
  assert.equal(doc.apiVersion, "kustomize.config.k8s.io/v1alpha1");
  assert.equal(doc.kind, "Component");
  const resources = doc.resources;
  const patches = doc.patches;
  assert.ok(Array.isArray(resources) && resources.every((r) => typeof r === "string"));
  assert.ok(Array.isArray(patches));
  return {
    resources: resources as string[],
    patches: patches.map((p) => {
      assert.ok(isObject(p) && typeof p.path === "string" && isObject(p.target));
      return { path: p.path, target: p.target };
    }),
  };
}

/** Cilium's DaemonSet with the component's patches applied. */
function rendered(): { before: V1PodSpec; after: V1PodSpec } {
  let daemonSet: Json = plainDocuments(CILIUM_DAEMONSET)[0];
  for (const { path, target } of component().patches) {
    assert.deepEqual(
      { kind: target.kind, name: target.name, namespace: target.namespace },
      { kind: "DaemonSet", name: "cilium", namespace: "kube-system" },
    );
    const [patch] = plainDocuments(Deno.readTextFileSync(`${AKS}/${path}`));
    daemonSet = strategicMerge(daemonSet, patch);
  }
  const [before, after] = [CILIUM_DAEMONSET, JSON.stringify(daemonSet)].map((text) => {
    const [typed] = loadAllYaml(text);
    assert.ok(typed instanceof V1DaemonSet);
    assert.ok(typed.spec?.template.spec);
    return typed.spec.template.spec;
  });
  return { before, after };
}

function containerNamed(list: V1Container[] | undefined, name: string): V1Container {
  const found = (list ?? []).find((c) => c.name === name);
  assert.ok(found, `container ${name}`);
  return found;
}

function configOf(container: V1Container): Config {
  const parsed = parseCommandLine(container.args ?? [], { NODE_NAME: "aks-nodepool1-0" });
  assert.equal(parsed.kind, "run", parsed.kind === "exit" ? parsed.stderr : "");
  return (parsed as { config: Config }).config;
}

function quantity(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(value);
  assert.ok(match, `quantity ${value}`);
  const scale: Record<string, number> = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  return Number(match[1]) * (match[2] === undefined ? 1 : scale[match[2]]);
}

function trimSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

/** What every monitor container must hold, whatever its role. */
function checkContainer(pod: V1PodSpec, container: V1Container, config: Config): void {
  assert.equal(config.once, false);
  assert.equal(config.dryRun, false, "it writes the label");
  assert.equal(container.image?.split(":").at(-1), VERSION);
  const nodeName = container.env?.find((e) => e.name === "NODE_NAME");
  assert.equal(nodeName?.valueFrom?.fieldRef?.fieldPath, "spec.nodeName");
  const volumes = pod.volumes ?? [];
  const mountOf = (volume: string) => container.volumeMounts?.find((m) => m.name === volume);
  for (const { name, family, mountPath } of ALLOWLIST_CONFIGMAPS) {
    const volume = volumes.find((v) => v.configMap?.name === name);
    assert.ok(volume, `a volume of ConfigMap ${name}`);
    assert.equal(mountOf(volume.name)?.mountPath, mountPath);
    assert.equal(mountOf(volume.name)?.readOnly, true);
    if (family === "ipv6") assert.equal(config.ipv6, true, "IPv6 allowlists mounted and used");
    assert.equal(trimSlash(family === "ipv4" ? config.input : config.input6), mountPath);
  }
  const hostMounts = (container.volumeMounts ?? []).filter((m) =>
    volumes.find((v) => v.name === m.name)?.hostPath !== undefined
  );
  if (config.checkMap) {
    assert.equal(hostMounts.length, 1, "one host path, for the BPF map");
    assert.equal(hostMounts[0].readOnly, true);
    assert.ok(config.mapPath.startsWith(`${hostMounts[0].mountPath}/`), "-mapPath is mounted");
  } else {
    assert.equal(hostMounts.length, 0, "no host path without -checkMap");
  }
  const security = container.securityContext;
  assert.deepEqual(security?.capabilities?.drop, ["ALL"]);
  assert.deepEqual(
    [...(security?.capabilities?.add ?? [])].sort(),
    ["NET_ADMIN", "NET_RAW", ...(config.checkMap ? ["SYS_ADMIN"] : [])].sort(),
  );
  assert.equal(security?.runAsUser, 0);
  assert.equal(security?.privileged, false);
  assert.equal(security?.allowPrivilegeEscalation, false);
  assert.equal(security?.readOnlyRootFilesystem, true);
  const { requests, limits } = container.resources ?? {};
  for (const resource of ["cpu", "memory"]) {
    const request = requests?.[resource];
    const limit = limits?.[resource];
    assert.ok(request && limit, `${container.name}: ${resource} request and limit`);
    assert.ok(quantity(request) <= quantity(limit), `${container.name}: ${resource}`);
  }
}

Deno.test("deploy/aks keeps Cilium's containers and volumes as they were and adds the monitor's", () => {
  const { before, after } = rendered();
  const names = (list: { name: string }[] | undefined) => (list ?? []).map((c) => c.name);
  const ours = (name: string) => name.startsWith("azure-iptables-monitor");
  // Cilium's own, in their order; the monitor's added (its init container runs first).
  assert.deepEqual(names(after.initContainers), [
    "azure-iptables-monitor-init",
    ...names(before.initContainers),
  ]);
  assert.deepEqual(names(after.containers).filter((n) => !ours(n)), names(before.containers));
  assert.deepEqual(names(after.containers).filter(ours), ["azure-iptables-monitor"]);
  assert.deepEqual(names(after.volumes).filter((n) => !ours(n)), names(before.volumes));
  assert.ok(names(after.volumes).some(ours));
  for (const name of [...names(before.initContainers), ...names(before.containers)]) {
    const list = [...(before.initContainers ?? []), ...before.containers];
    const afterList = [...(after.initContainers ?? []), ...after.containers];
    assert.deepEqual(
      afterList.find((c) => c.name === name),
      list.find((c) => c.name === name),
      `Cilium's ${name} is unchanged`,
    );
  }
  assert.equal(after.hostNetwork, true, "the checks read the node's own rules");
  assert.equal(after.serviceAccountName, before.serviceAccountName);
});

Deno.test("deploy/aks: the init container waits for a clean node, the sidecar keeps watching", () => {
  const { after } = rendered();
  const init = containerNamed(after.initContainers, "azure-iptables-monitor-init");
  const initConfig = configOf(init);
  checkContainer(after, init, initConfig);
  assert.equal(initConfig.terminateOnSuccess, true, "the init container ends on a clean node");
  assert.equal(initConfig.metricsAddress, undefined, "an init container serves nothing");

  const sidecar = containerNamed(after.containers, "azure-iptables-monitor");
  const sidecarConfig = configOf(sidecar);
  checkContainer(after, sidecar, sidecarConfig);
  assert.equal(sidecarConfig.terminateOnSuccess, false, "a sidecar that ends would be restarted");
  assert.equal(sidecarConfig.events, true);
  assert.equal(sidecarConfig.checkMap, true);
  // A hostPort beside Cilium's would collide with its metrics ports (9962-9965).
  assert.equal(sidecarConfig.metricsAddress, undefined);
  assert.equal(sidecar.ports, undefined);
});

Deno.test("deploy/aks binds the monitor's roles to the service account the pod runs under", () => {
  const { after } = rendered();
  const { resources } = component();
  const docs = resources.flatMap((file) =>
    loadAllYaml(Deno.readTextFileSync(`${AKS}/${file}`)) as unknown[]
  );
  const base = loadAllYaml(Deno.readTextFileSync(`${ROOT}/deploy/rbac.yaml`)) as unknown[];
  const bindings = docs.filter((d) =>
    d instanceof V1ClusterRoleBinding || d instanceof V1RoleBinding
  ) as (V1ClusterRoleBinding | V1RoleBinding)[];
  assert.equal(bindings.length, docs.length, "only bindings: the roles are deploy/rbac.yaml's");
  const baseBindings = base.filter((d) =>
    d instanceof V1ClusterRoleBinding || d instanceof V1RoleBinding
  ) as (V1ClusterRoleBinding | V1RoleBinding)[];
  // The same roles as the standalone DaemonSet's account gets, no more and no fewer.
  assert.deepEqual(
    bindings.map((b) => [b.roleRef.kind, b.roleRef.name, b.metadata?.namespace ?? null]).sort(),
    baseBindings.map((b) => [b.roleRef.kind, b.roleRef.name, b.metadata?.namespace ?? null])
      .sort(),
  );
  for (const binding of bindings) {
    const role = base.find((d) =>
      (d instanceof V1ClusterRole || d instanceof V1Role) && d.kind === binding.roleRef.kind &&
      d.metadata?.name === binding.roleRef.name
    );
    assert.ok(role, `${binding.roleRef.kind} ${binding.roleRef.name} is in deploy/rbac.yaml`);
    assert.deepEqual(
      (binding.subjects ?? []).map(({ kind, name, namespace }) => ({ kind, name, namespace })),
      [{ kind: "ServiceAccount", name: after.serviceAccountName, namespace: "kube-system" }],
    );
  }
});

Deno.test("the strategic merge used here merges by key, replaces the rest, and deletes on null", () => {
  const merged = strategicMerge(
    {
      containers: [{ name: "a", args: ["1"], env: [{ name: "X", value: "1" }] }],
      volumes: [{ name: "v" }],
      keep: 1,
    },
    {
      containers: [{ name: "a", args: ["2"], env: [{ name: "Y", value: "2" }] }, { name: "b" }],
      keep: null,
    },
  );
  assert.deepEqual(merged, {
    containers: [
      { name: "b" },
      { name: "a", args: ["2"], env: [{ name: "Y", value: "2" }, { name: "X", value: "1" }] },
    ],
    volumes: [{ name: "v" }],
  });
});
