/**
 * The Go original as the reference for which lines a dump holds. `tests/go/list_lines.go`
 * reads a namespace's rules as the original does (go-iptables: `iptables -t T -S`, then
 * `iptables -t T -S CHAIN` per chain, output split on "\n"); we read the same namespace
 * with one save per backend. Rules carry the hostile text a node user can write into a
 * quoted string (newlines, dump syntax, quotes, backslashes, CR, `#`, lines that look
 * like counters): both must hold exactly the same lines, table by table, and every line
 * of a rule printed over several lines must be one no allowlist can accept.
 */
import assert from "node:assert/strict";
import { readFamily } from "../src/iptables/read.ts";
import type { Family } from "../src/iptables/types.ts";
import { type Backend, netnsRequires, withNetns } from "./_support/netns.ts";
import { missing } from "./_support/requires.ts";
import { z } from "zod";

const GOPATH = "/usr/share/gocode";
const GO_IPTABLES = `${GOPATH}/src/github.com/coreos/go-iptables/iptables`;
const SOURCE = decodeURIComponent(new URL("./go/list_lines.go", import.meta.url).pathname);
const FAMILIES: Family[] = ["ipv4", "ipv6"];
const BACKENDS: Backend[] = ["nft", "legacy"];

function hasGoIptables(): boolean {
  try {
    return Deno.statSync(GO_IPTABLES).isDirectory;
  } catch {
    return false;
  }
}

function requirements(): { ignore: boolean } {
  const netns = netnsRequires({ backends: BACKENDS, families: FAMILIES });
  if (netns.ignore) return netns;
  if (missing({ commands: ["go"] }) !== undefined) return { ignore: true };
  if (!hasGoIptables()) {
    const reason = `needs ${GO_IPTABLES} (Debian's golang-github-coreos-go-iptables-dev)`;
    if (Deno.env.get("CI")) throw new Error(`${reason}, which CI must provide (see .ci/run)`);
    console.warn(`skipped: ${reason}`);
    return { ignore: true };
  }
  return { ignore: false };
}

/** Builds the Go program and a PATH directory whose `iptables` is the chosen backend. */
async function buildGo(dir: string): Promise<string> {
  const binary = `${dir}/list_lines`;
  const { code, stderr } = await new Deno.Command("go", {
    args: ["build", "-o", binary, SOURCE],
    cwd: dir,
    env: {
      GOPATH,
      GO111MODULE: "off",
      GOFLAGS: "",
      GOCACHE: `${dir}/cache`,
      HOME: dir,
      GOTOOLCHAIN: "local",
    },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`go build failed:\n${new TextDecoder().decode(stderr)}`);
  return binary;
}

async function backendPath(dir: string, backend: Backend): Promise<string> {
  const bin = `${dir}/${backend}-bin`;
  await Deno.mkdir(bin);
  for (const name of ["iptables", "ip6tables"]) {
    await Deno.symlink(`/usr/sbin/xtables-${backend}-multi`, `${bin}/${name}`);
  }
  return bin;
}

/** Comments (at most 255 bytes) a node user could write; each goes into one rule. */
const COMMENTS = [
  "x\ny",
  "\nCOMMIT\n*raw\n:FOO - [0:0]\n-A FOO -j DROP\n",
  "\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n# Completed on Thu\n\n",
  'quotes "inside" \\" and \\\\ and \' and\n"\n\\\n',
  "cr\r\nlf\n\r\n",
  "\n[1:2] -A INPUT -j ACCEPT\n[3:4]\n",
  "#\n# comment\n  \n\t\n",
  "plain",
];

const Lines = z.record(z.string(), z.array(z.string()));

for (const backend of BACKENDS) {
  for (const family of FAMILIES) {
    Deno.test({
      name:
        `our lines are the Go original's lines (${backend}, ${family}), hostile comments included`,
      ...requirements(),
      fn: async () => {
        const dir = await Deno.makeTempDir({ prefix: "aim-go-lines-" });
        try {
          const goBinary = await buildGo(dir);
          const bin = await backendPath(dir, backend);
          await withNetns(async (ns) => {
            const iptables = `${family === "ipv4" ? "iptables" : "ip6tables"}-${backend}`;
            const add = (...args: string[]) => ns.exec(iptables, ["-w", "30", ...args]);
            await add("-t", "nat", "-N", "KUBE-SERVICES");
            await add("-t", "nat", "-A", "PREROUTING", "-j", "KUBE-SERVICES");
            await add("-N", 'c"d');
            for (const comment of COMMENTS) {
              await add("-A", "INPUT", "-m", "comment", "--comment", comment, "-j", "ACCEPT");
              await add("-A", 'c"d', "-m", "comment", "--comment", comment, "-j", "RETURN");
            }
            await add("-A", "INPUT", "-i", 'a"b', "-j", 'c"d');
            await add("-A", "OUTPUT", "-j", "DROP");
            await add(
              "-t",
              "mangle",
              "-A",
              "OUTPUT",
              "-m",
              "comment",
              "--comment",
              "\nx",
              "-j",
              "ACCEPT",
            );

            const go = await ns.run(
              "env",
              [`PATH=${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, goBinary, "-family", family],
              { timeoutMs: 120_000 },
            );
            if (go.kind !== "exited" || go.code !== 0) {
              assert.fail(`the Go reference failed: ${JSON.stringify(go)}`);
            }
            const goLines = Lines.parse(JSON.parse(go.stdout));

            const read = await readFamily(family, { timeoutMs: 60_000, run: ns.run });
            assert.deepEqual(read.errors, []);
            const source = read.sources.find((s) => s.source.includes(`-${backend}-save`));
            assert.ok(source !== undefined, JSON.stringify(read.sources.map((s) => s.source)));
            const ours = Object.fromEntries(
              source.tables.map(({ table, rules }) => [table, rules.map((rule) => rule.text)]),
            );
            // Go's listing creates the legacy raw and security tables as it lists them.
            for (const table of ["filter", "mangle", "nat"]) assert.ok(table in ours, table);
            for (const [table, lines] of Object.entries(ours)) {
              assert.deepEqual([...lines].sort(), [...(goLines[table] ?? [])].sort(), table);
            }

            // Every line of a rule printed over several lines cannot be allowlisted; the
            // rules on one line each can.
            const filter = source.tables.find((table) => table.table === "filter")!;
            const multiLine = COMMENTS.filter((comment) => comment.includes("\n"));
            const expectedUnallowable = 2 * multiLine.reduce(
              (sum, comment) => sum + comment.split("\n").length,
              0,
            );
            assert.equal(
              filter.rules.filter((rule) => rule.unallowable !== undefined).length,
              expectedUnallowable,
            );
            for (const text of ["-A OUTPUT -j DROP", '-A INPUT -i a"b -j c"d', '-N c"d']) {
              const rule = filter.rules.find((r) => r.text === text);
              assert.ok(rule !== undefined && rule.unallowable === undefined, text);
            }
          });
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    });
  }
}
