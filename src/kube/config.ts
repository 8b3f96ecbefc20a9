import { KubeConfig, type User } from "@kubernetes/client-node";
import { LocalSetupError } from "./errors.ts";

/** client-node's authenticator contract (its type is not exported by name). */
type Authenticator = Parameters<KubeConfig["addAuthenticator"]>[0];

/** Where a pod finds its service-account token and the cluster CA. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The auth-provider name of the in-cluster user; no built-in authenticator claims it. */
const TOKEN_PROVIDER = "azure-iptables-monitor-service-account";

/** Where the Kubernetes configuration comes from, in order of precedence. */
export interface KubeConfigSource {
  /** The `-kubeconfig` flag. */
  kubeconfig?: string;
  /** The environment (`KUBECONFIG`, `KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`). */
  env?: (name: string) => string | undefined;
  /** The service-account directory; tests point it at a temporary one. */
  serviceAccountDir?: string;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends the service-account token read from its file at every request. Bound tokens
 * expire (an hour by default) and the kubelet rewrites the file before they do;
 * client-node's own file authenticator keeps a token for 60 s, this one never holds a
 * stale token at all, at the cost of reading a small file a few times per check.
 */
export class ServiceAccountTokenAuth implements Authenticator {
  isAuthProvider(user: User): boolean {
    return tokenPathOf(user) !== undefined;
  }

  applyAuthentication(user: User, opts: { headers?: object }): Promise<void> {
    const path = tokenPathOf(user);
    if (path === undefined) return Promise.resolve();
    let token: string;
    try {
      // A FIFO in its place would block this synchronous read, and the process with it.
      if (!Deno.statSync(path).isFile) throw new Error("not a regular file");
      token = Deno.readTextFileSync(path).trim();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return Promise.reject(
        new LocalSetupError(`cannot read the service-account token ${path}: ${reason}`),
      );
    }
    opts.headers = { ...opts.headers, Authorization: `Bearer ${token}` };
    return Promise.resolve();
  }
}

function tokenPathOf(user: User): string | undefined {
  const provider: unknown = user.authProvider;
  if (typeof provider !== "object" || provider === null) return undefined;
  if (!("name" in provider) || provider.name !== TOKEN_PROVIDER) return undefined;
  if (!("config" in provider) || typeof provider.config !== "object") return undefined;
  const config = provider.config;
  if (config === null || !("tokenPath" in config) || typeof config.tokenPath !== "string") {
    return undefined;
  }
  return config.tokenPath;
}

/** A kubeconfig larger than this is refused: real ones, certificates inlined, are a few KiB. */
export const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024;

/**
 * The text of a kubeconfig file: a regular file (a FIFO would block the open, a device
 * would never end) of at most {@linkcode MAX_KUBECONFIG_BYTES}, checked again once open.
 * Read synchronously, once at start; the file is the operator's, not the node users'.
 */
function readKubeconfigText(path: string): string {
  const kind = (info: Deno.FileInfo) =>
    info.isDirectory ? "a directory" : info.isFifo ? "a named pipe (FIFO)" : "not a regular file";
  const before = Deno.statSync(path);
  if (!before.isFile) throw new Error(`is ${kind(before)}`);
  const file = Deno.openSync(path, { read: true });
  try {
    const info = file.statSync();
    if (!info.isFile) throw new Error(`is ${kind(info)}`);
    const buffer = new Uint8Array(MAX_KUBECONFIG_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = file.readSync(buffer.subarray(length));
      if (read === null) break;
      length += read;
    }
    if (length > MAX_KUBECONFIG_BYTES) {
      throw new Error(`is larger than ${MAX_KUBECONFIG_BYTES / 1024 / 1024} MiB`);
    }
    return new TextDecoder().decode(buffer.subarray(0, length));
  } finally {
    file.close();
  }
}

/** The directory of `path`, for certificate paths relative to the kubeconfig. */
function directoryOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash === -1 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

/** Why a kubeconfig could not be loaded, in one line: YAML's reason without its snippet. */
function loadFailure(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "it does not exist";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Error && error.name === "YAMLException") {
    return `it is not YAML: ${error.message.split("\n")[0]}`;
  }
  if (error instanceof TypeError) {
    return "it is not a kubeconfig (expected a YAML mapping with clusters, contexts and users)";
  }
  return error instanceof Error ? error.message.split("\n")[0] : String(error);
}

function loadFile(path: string): KubeConfig {
  const config = new KubeConfig();
  const text = readKubeconfigText(path);
  config.loadFromString(text);
  config.makePathsAbsolute(directoryOf(path));
  return config;
}

/**
 * Refuses what this program cannot do with the current user: an exec credential plugin
 * would have to run a program that --allow-run does not name (and that the image does
 * not ship), so it would fail at every request; say so at start instead.
 */
function refuseUnsupportedAuth(config: KubeConfig, what: string): void {
  const user = config.getCurrentUser();
  if (user?.exec !== undefined && user.exec !== null) {
    const command = typeof user.exec.command === "string" ? ` (${user.exec.command})` : "";
    throw new Error(
      `${what}: user "${user.name}" uses an exec credential plugin${command}, which this ` +
        "monitor does not run (it may only run the iptables tools, see --allow-run); give " +
        "the user a client certificate or a token, or run the monitor in the cluster",
    );
  }
}

function loadFiles(paths: string[], what: string): KubeConfig {
  let config: KubeConfig | undefined;
  for (const path of paths) {
    let next: KubeConfig;
    try {
      next = loadFile(path);
    } catch (error) {
      throw new Error(`cannot load ${what} ${path}: ${loadFailure(error)}`);
    }
    if (config === undefined) config = next;
    else config.mergeConfig(next, true);
  }
  if (config === undefined || config.getCurrentCluster() === null) {
    throw new Error(`${what} ${paths.join(":")} has no current context with a cluster`);
  }
  refuseUnsupportedAuth(config, `${what} ${paths.join(":")}`);
  return config;
}

function inCluster(env: (name: string) => string | undefined, dir: string): KubeConfig {
  const host = env("KUBERNETES_SERVICE_HOST");
  const port = env("KUBERNETES_SERVICE_PORT");
  if (host === undefined || host === "" || port === undefined || port === "") {
    throw new Error(
      "no Kubernetes configuration: -kubeconfig not given, KUBECONFIG unset, and not " +
        "running in a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset)",
    );
  }
  const tokenPath = `${dir}/token`;
  const caPath = `${dir}/ca.crt`;
  for (const path of [tokenPath, caPath]) {
    if (!exists(path)) {
      throw new Error(`running in a pod but ${path} is missing (automountServiceAccountToken?)`);
    }
  }
  const server = host.includes(":") ? `https://[${host}]:${port}` : `https://${host}:${port}`;
  const config = new KubeConfig();
  config.addAuthenticator(new ServiceAccountTokenAuth());
  config.loadFromClusterAndUser(
    { name: "in-cluster", server, caFile: caPath, skipTLSVerify: false },
    { name: "service-account", authProvider: { name: TOKEN_PROVIDER, config: { tokenPath } } },
  );
  return config;
}

/**
 * The client configuration: the `-kubeconfig` file, else the `KUBECONFIG` files
 * (colon-separated, missing ones skipped as kubectl does), else the pod's service
 * account. Throws one clear line when none of them is usable.
 */
export function loadKubeConfig(source: KubeConfigSource = {}): KubeConfig {
  const env = source.env ?? ((name: string) => Deno.env.get(name));
  if (source.kubeconfig !== undefined && source.kubeconfig !== "") {
    return loadFiles([source.kubeconfig], "-kubeconfig");
  }
  const fromEnv = env("KUBECONFIG");
  if (fromEnv !== undefined && fromEnv !== "") {
    const paths = fromEnv.split(":").filter((path) => path !== "" && exists(path));
    if (paths.length === 0) {
      throw new Error(`KUBECONFIG=${fromEnv}: none of these files exists`);
    }
    return loadFiles(paths, "KUBECONFIG");
  }
  return inCluster(env, source.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
}
