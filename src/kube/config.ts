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

function loadFiles(paths: string[], what: string): KubeConfig {
  const config = new KubeConfig();
  paths.forEach((path, index) => {
    try {
      if (index === 0) {
        config.loadFromFile(path);
      } else {
        const next = new KubeConfig();
        next.loadFromFile(path);
        config.mergeConfig(next, true);
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot load ${what} ${path}: ${reason}`);
    }
  });
  if (config.getCurrentCluster() === null) {
    throw new Error(`${what} ${paths.join(":")} has no current context with a cluster`);
  }
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
