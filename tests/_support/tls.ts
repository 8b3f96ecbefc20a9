/**
 * A throwaway CA and server certificate for `127.0.0.1`/`localhost`, made with the
 * openssl CLI (Debian package `openssl`), and a kubeconfig that trusts that CA. Tests
 * that use these declare `requires({ commands: ["openssl"] })`.
 */

/** The files and PEM texts of a test PKI. */
export interface TestPki {
  dir: string;
  caCertPath: string;
  caCert: string;
  certPath: string;
  cert: string;
  keyPath: string;
  key: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const output = await new Deno.Command("openssl", {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr}`);
  }
}

/**
 * Makes a CA and a server certificate signed by it (P-256 keys, valid one day, SANs
 * `IP:127.0.0.1`, `DNS:localhost` and any `ips` given, e.g. a veth address a network
 * namespace reaches the server on) in `dir`, which must exist. `names` replaces those
 * SANs (e.g. `["DNS:elsewhere.invalid"]` for a certificate made for another name).
 */
export async function makeTestPki(
  dir: string,
  ips: readonly string[] = [],
  options: { names?: readonly string[] } = {},
): Promise<TestPki> {
  const names = options.names ??
    ["IP:127.0.0.1", "DNS:localhost", ...ips.map((ip) => `IP:${ip}`)];
  const ext = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    `subjectAltName=${[...new Set(names)].join(",")}`,
  ].join("\n");
  await Deno.writeTextFile(`${dir}/server.ext`, `${ext}\n`);
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...key,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "1",
      "-subj",
      "/CN=aim-test-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  await openssl(
    ["req", ...key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    dir,
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.crt",
      "-days",
      "1",
      "-extfile",
      "server.ext",
    ],
    dir,
  );
  return {
    dir,
    caCertPath: `${dir}/ca.crt`,
    caCert: await Deno.readTextFile(`${dir}/ca.crt`),
    certPath: `${dir}/server.crt`,
    cert: await Deno.readTextFile(`${dir}/server.crt`),
    keyPath: `${dir}/server.key`,
    key: await Deno.readTextFile(`${dir}/server.key`),
  };
}

/** What a test kubeconfig points at. */
export interface KubeconfigTarget {
  server: string;
  /** PEM of the CA that signed the server certificate. */
  caCert: string;
  token: string;
}

/**
 * A kubeconfig (JSON, which is YAML too) with one cluster, one bearer-token user and a
 * current context, the way `kubectl config view --raw` would show it.
 */
export function kubeconfigText(target: KubeconfigTarget): string {
  const caData = btoa(target.caCert);
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "aim-fixture",
        cluster: { server: target.server, "certificate-authority-data": caData },
      }],
      users: [{ name: "aim-monitor", user: { token: target.token } }],
      contexts: [{ name: "aim-fixture", context: { cluster: "aim-fixture", user: "aim-monitor" } }],
      "current-context": "aim-fixture",
      preferences: {},
    },
    null,
    2,
  );
}

/** Writes {@linkcode kubeconfigText} to `path`. */
export async function writeKubeconfig(path: string, target: KubeconfigTarget): Promise<void> {
  await Deno.writeTextFile(path, kubeconfigText(target));
}
