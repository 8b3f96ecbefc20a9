/**
 * `deno task configmaps`: writes `deploy/allowlists.yaml`, the IPv4 and IPv6 allowlist
 * ConfigMaps, from `patterns/ipv4` and `patterns/ipv6`. The ConfigMaps are generated,
 * never copied by hand, so the cluster gets exactly the allowlists that the tests check.
 * `--check` only compares and exits 1 when the file is out of date.
 *
 * @module
 */

import { ALLOWLIST_FILES } from "../src/patterns/allowlist.ts";

const root = new URL("../", import.meta.url);

/** The repository root as a path. */
export const ROOT: string = decodeURIComponent(root.pathname).replace(/\/$/, "");

/** The generated manifest, relative to the repository root. */
export const OUTPUT = "deploy/allowlists.yaml";

/** The namespace the monitor is deployed in. */
export const NAMESPACE = "kube-system";

/** One allowlist ConfigMap: which directory it is made from and where the pod mounts it. */
export interface AllowlistConfigMap {
  family: "ipv4" | "ipv6";
  name: string;
  /** The source directory, relative to the repository root. */
  dir: string;
  /** The DaemonSet mounts it here: the default of `-input`/`-input6`. */
  mountPath: string;
}

/** The two ConfigMaps, in the order they are written. */
export const ALLOWLIST_CONFIGMAPS: readonly AllowlistConfigMap[] = [
  {
    family: "ipv4",
    name: "azure-iptables-monitor-allowlist-ipv4",
    dir: "patterns/ipv4",
    mountPath: "/etc/config",
  },
  {
    family: "ipv6",
    name: "azure-iptables-monitor-allowlist-ipv6",
    dir: "patterns/ipv6",
    mountPath: "/etc/config6",
  },
];

/** Characters a YAML literal block can hold as they are. */
const PRINTABLE = /^[\t\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*$/u;

/**
 * Whether `text` can be written as a literal block (`|` or `|-`) and read back unchanged:
 * printable, no `\r`, no line that starts with or ends in blanks or is only blanks, at most
 * one final newline. Anything else is written double-quoted.
 */
function literalSafe(text: string): boolean {
  if (text === "" || !PRINTABLE.test(text) || text.endsWith("\n\n")) return false;
  const body = text.endsWith("\n") ? text.slice(0, -1) : text;
  return body.split("\n").every((line) =>
    line === "" || (!/^[ \t]/.test(line) && !/[ \t]$/.test(line))
  );
}

/** A YAML double-quoted scalar: JSON's escapes, plus the line breaks YAML 1.1 knows. */
function quoted(text: string): string {
  return JSON.stringify(text).replaceAll("\u2028", "\\u2028").replaceAll("\u2029", "\\u2029")
    .replaceAll("\u0085", "\\u0085").replaceAll("\ufeff", "\\ufeff");
}

/** `key: value` for a ConfigMap's data, indented by `indent` spaces. */
function dataEntry(key: string, text: string, indent: string): string {
  if (!literalSafe(text)) return `${indent}${key}: ${quoted(text)}\n`;
  const chomp = text.endsWith("\n") ? "" : "-";
  const body = text.endsWith("\n") ? text.slice(0, -1) : text;
  const lines = body.split("\n").map((line) => (line === "" ? "" : `${indent}  ${line}`));
  return `${indent}${key}: |${chomp}\n${lines.join("\n")}\n`;
}

/** The allowlist files of one directory, by name, in the order the monitor lists them. */
export async function readAllowlistDir(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (const name of ALLOWLIST_FILES) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${dir}/${name}`);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    try {
      files.set(name, decoder.decode(bytes));
    } catch {
      throw new Error(`${dir}/${name} is not UTF-8 text, so it cannot go into a ConfigMap`);
    }
  }
  return files;
}

/** The text of `deploy/allowlists.yaml` for the allowlists under `root`. */
export async function renderAllowlistConfigMaps(rootDir: string = ROOT): Promise<string> {
  const documents: string[] = [];
  for (const configMap of ALLOWLIST_CONFIGMAPS) {
    const files = await readAllowlistDir(`${rootDir}/${configMap.dir}`);
    if (files.size === 0) throw new Error(`${configMap.dir} holds no allowlist files`);
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n" +
      `  name: ${configMap.name}\n  namespace: ${NAMESPACE}\n` +
      "  labels:\n    app.kubernetes.io/name: azure-iptables-monitor\n" +
      `    app.kubernetes.io/component: allowlist-${configMap.family}\n` +
      "data:\n";
    for (const [name, content] of files) text += dataEntry(name, content, "  ");
    documents.push(text);
  }
  return "# Generated from patterns/ by `deno task configmaps`: edit patterns/, not this file.\n" +
    documents.map((document) => `---\n${document}`).join("");
}

async function main(args: readonly string[]): Promise<number> {
  const check = args.includes("--check");
  const unknown = args.filter((arg) => arg !== "--check");
  if (unknown.length > 0) {
    console.error(`configmaps: unknown argument ${unknown[0]}; usage: [--check]`);
    return 2;
  }
  const text = await renderAllowlistConfigMaps();
  const path = `${ROOT}/${OUTPUT}`;
  if (check) {
    const current = await Deno.readTextFile(path).catch(() => "");
    if (current === text) return 0;
    console.error(`configmaps: ${OUTPUT} is out of date; run \`deno task configmaps\``);
    return 1;
  }
  await Deno.writeTextFile(path, text);
  console.log(`configmaps: wrote ${OUTPUT} from patterns/`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (error) {
    console.error(`configmaps: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exitCode = 1;
  }
}
