/**
 * Request latency and memory of the Kubernetes API transport, against the HTTPS API
 * fixture on loopback. Each measurement is a fresh process:
 *
 * - `fetch`: Deno's own `fetch` with a `Deno.createHttpClient` trusting the fixture's CA,
 *   GETting the CiliumNode: the floor, measured in the same run;
 * - `loaded`: `@kubernetes/client-node` and our client loaded, no request sent: the memory
 *   floor of a daemon that talks to the API;
 * - `ours`: our client (`createKubeApi`), the same GETs, then merge-patches of the label.
 *
 * With `--baseline DIR` (a checkout of another version, e.g. `git archive REV | tar -x`),
 * `loaded` and `ours` are also measured with that version's code, in the same run: the
 * before and after of a transport change. Processes of every kind alternate. Prints a
 * Markdown table (for BENCHMARKS.md), or the raw numbers as JSON with `--json`.
 *
 * Run: `deno run -A bench/api_transport.ts [--runs 5] [--requests 300] [--baseline DIR]
 * [--json | --write]`. `--write` puts the section into BENCHMARKS.md between
 * {@linkcode SECTION_BEGIN} and {@linkcode SECTION_END} (the suite keeps it when it
 * rewrites the file).
 *
 * @module
 */
import { ApiFixture } from "../tests/_support/api_fixture.ts";
import { describeMachine } from "./machine.ts";
import { memorySnapshot } from "./memory.ts";
import { mustRun } from "./measure.ts";

/** Where this benchmark's section starts and ends in BENCHMARKS.md. */
export const SECTION_BEGIN = "<!-- api-transport: written by bench/api_transport.ts -->";
export const SECTION_END = "<!-- /api-transport -->";

/** The marked sections of `markdown` that other scripts own, to carry into a rewrite. */
export function ownedSections(markdown: string): string[] {
  const sections: string[] = [];
  let from = markdown.indexOf(SECTION_BEGIN);
  while (from !== -1) {
    const end = markdown.indexOf(SECTION_END, from);
    if (end === -1) break;
    sections.push(markdown.slice(from, end + SECTION_END.length));
    from = markdown.indexOf(SECTION_BEGIN, end);
  }
  return sections;
}

/** What one probe process measured. */
export interface TransportProbe {
  kind: "fetch" | "loaded" | "ours";
  /** Milliseconds per GET, in order (the first opens the connection). */
  getMs: number[];
  /** Milliseconds per PATCH, in order. */
  patchMs: number[];
  /** Resident set after the requests (and a forced GC where available), in bytes. */
  rss: number;
  heapUsed: number;
}

const NODE = "bench-node";
const LABEL = "kubernetes.azure.com/user-iptables-rules";

async function probe(
  kind: TransportProbe["kind"],
  kubeconfig: string,
  url: string,
  ca: string,
  requests: number,
): Promise<TransportProbe> {
  const getMs: number[] = [];
  const patchMs: number[] = [];
  if (kind === "fetch") {
    const client = Deno.createHttpClient({ caCerts: [ca] });
    const token = JSON.parse(await Deno.readTextFile(kubeconfig)).users[0].user.token;
    for (let i = 0; i < requests; i++) {
      const started = performance.now();
      const response = await fetch(`${url}/apis/cilium.io/v2/ciliumnodes/${NODE}`, {
        client,
        headers: { authorization: `Bearer ${token}` },
      });
      await response.arrayBuffer();
      getMs.push(performance.now() - started);
    }
    client.close();
  } else {
    const { createKubeApi } = await import("../src/kube/client.ts");
    const { loadKubeConfig } = await import("../src/kube/config.ts");
    const api = createKubeApi(loadKubeConfig({ kubeconfig }));
    if (kind === "ours") {
      for (let i = 0; i < requests; i++) {
        const started = performance.now();
        await api.getCiliumNode(NODE);
        getMs.push(performance.now() - started);
      }
      for (let i = 0; i < Math.ceil(requests / 3); i++) {
        const started = performance.now();
        await api.patchCiliumNodeLabels(NODE, { [LABEL]: i % 2 === 0 ? "true" : "false" });
        patchMs.push(performance.now() - started);
      }
    }
    api.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const memory = memorySnapshot();
  return { kind, getMs, patchMs, rss: memory.rss, heapUsed: memory.heapUsed };
}

function flag(name: string, fallback: number): number {
  const index = Deno.args.indexOf(name);
  return index === -1 ? fallback : Number(Deno.args[index + 1]);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const MiB = 1024 * 1024;

const SELF = import.meta.filename ?? new URL(import.meta.url).pathname;

async function runProbe(
  kind: TransportProbe["kind"],
  api: ApiFixture,
  requests: number,
  root?: string,
): Promise<TransportProbe> {
  const output = await new Deno.Command(Deno.execPath(), {
    cwd: root,
    args: [
      "run",
      "--quiet",
      "-A",
      "--v8-flags=--expose-gc",
      root === undefined ? SELF : `${root}/bench/api_transport.ts`,
      "--probe",
      kind,
      api.kubeconfigPath,
      api.url,
      api.caCertPath,
      String(requests),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`probe ${kind} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return JSON.parse(stdout) as TransportProbe;
}

async function main(): Promise<void> {
  const probeAt = Deno.args.indexOf("--probe");
  if (probeAt !== -1) {
    const [kind, kubeconfig, url, caPath, requests] = Deno.args.slice(probeAt + 1);
    const ca = await Deno.readTextFile(caPath);
    const result = await probe(
      kind as TransportProbe["kind"],
      kubeconfig,
      url,
      ca,
      Number(requests),
    );
    console.log(JSON.stringify(result));
    return;
  }
  const started = new Date();
  const loadStart = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const runs = flag("--runs", 5);
  const requests = flag("--requests", 300);
  const baselineAt = Deno.args.indexOf("--baseline");
  const baseline = baselineAt === -1 ? undefined : Deno.args[baselineAt + 1];
  await using api = await ApiFixture.start();
  api.seedCiliumNode(NODE);
  const results: TransportProbe[] = [];
  const before: TransportProbe[] = [];
  for (let run = 0; run < runs; run++) {
    for (const kind of ["fetch", "loaded", "ours"] as const) {
      results.push(await runProbe(kind, api, requests));
      if (baseline !== undefined && kind !== "fetch") {
        before.push(await runProbe(kind, api, requests, baseline));
      }
    }
  }
  const of = (kind: TransportProbe["kind"]) => results.filter((r) => r.kind === kind);
  const beforeOf = (kind: TransportProbe["kind"]) => before.filter((r) => r.kind === kind);
  // The first request of each process opens the connection (TCP + TLS): reported apart.
  const warm = (probes: TransportProbe[], pick: (p: TransportProbe) => number[]) =>
    probes.flatMap((p) => pick(p).slice(1));
  const first = (probes: TransportProbe[]) => median(probes.map((p) => p.getMs[0]));
  const summary = {
    runs,
    requests,
    fetch: {
      getP50: median(warm(of("fetch"), (p) => p.getMs)),
      getP95: percentile(warm(of("fetch"), (p) => p.getMs), 95),
      firstGet: first(of("fetch")),
      rssMiB: median(of("fetch").map((p) => p.rss)) / MiB,
    },
    loaded: { rssMiB: median(of("loaded").map((p) => p.rss)) / MiB },
    ours: {
      getP50: median(warm(of("ours"), (p) => p.getMs)),
      getP95: percentile(warm(of("ours"), (p) => p.getMs), 95),
      firstGet: first(of("ours")),
      patchP50: median(warm(of("ours"), (p) => p.patchMs)),
      patchP95: percentile(warm(of("ours"), (p) => p.patchMs), 95),
      rssMiB: median(of("ours").map((p) => p.rss)) / MiB,
    },
    before: baseline === undefined ? undefined : {
      getP50: median(warm(beforeOf("ours"), (p) => p.getMs)),
      getP95: percentile(warm(beforeOf("ours"), (p) => p.getMs), 95),
      firstGet: first(beforeOf("ours")),
      patchP50: median(warm(beforeOf("ours"), (p) => p.patchMs)),
      patchP95: percentile(warm(beforeOf("ours"), (p) => p.patchMs), 95),
      rssMiB: median(beforeOf("ours").map((p) => p.rss)) / MiB,
      loadedRssMiB: median(beforeOf("loaded").map((p) => p.rss)) / MiB,
    },
  };
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(summary, null, 2));
    return;
  }
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  const mib = (value: number) => `${value.toFixed(1)} MiB`;
  const ratio = (value: number, floor: number) => `${(value / floor).toFixed(2)}x`;
  const { fetch: floor, ours, before: old } = summary;
  const row = (what: string, f: string, b: string, a: string, ratios: string) =>
    `| ${what} | ${f} | ${b} | ${a} | ${ratios} |`;
  const both = (after: number, previous: number | undefined, base: number) =>
    previous === undefined
      ? ratio(after, base)
      : `${ratio(previous, base)} -> ${ratio(after, base)}`;
  const table = [
    `| measure | Deno fetch (floor) | before | after | before -> after, against the floor |`,
    `| --- | --- | --- | --- | --- |`,
    row(
      "GET, median (requests after the first)",
      ms(floor.getP50),
      old ? ms(old.getP50) : "",
      ms(ours.getP50),
      both(ours.getP50, old?.getP50, floor.getP50),
    ),
    row(
      "GET, 95th percentile",
      ms(floor.getP95),
      old ? ms(old.getP95) : "",
      ms(ours.getP95),
      both(ours.getP95, old?.getP95, floor.getP95),
    ),
    row(
      "first GET of a process (connect, TLS, request)",
      ms(floor.firstGet),
      old ? ms(old.firstGet) : "",
      ms(ours.firstGet),
      both(ours.firstGet, old?.firstGet, floor.firstGet),
    ),
    row(
      "merge-patch of the label, median",
      "",
      old ? ms(old.patchP50) : "",
      ms(ours.patchP50),
      old ? ratio(ours.patchP50, old.patchP50) + " of before" : "",
    ),
    row(
      "RSS, client loaded, no request",
      "",
      old ? mib(old.loadedRssMiB) : "",
      mib(summary.loaded.rssMiB),
      old ? ratio(summary.loaded.rssMiB, old.loadedRssMiB) + " of before" : "",
    ),
    row(
      "RSS after the requests (forced GC)",
      mib(floor.rssMiB),
      old ? mib(old.rssMiB) : "",
      mib(ours.rssMiB),
      old
        ? `${ratio(old.rssMiB, old.loadedRssMiB)} -> ${
          ratio(ours.rssMiB, summary.loaded.rssMiB)
        } of loaded`
        : ratio(ours.rssMiB, summary.loaded.rssMiB) + " of loaded",
    ),
  ].join("\n");
  if (!Deno.args.includes("--write")) {
    console.log(table);
    return;
  }
  await writeSection(table, { runs, requests, baseline, loadStart, started });
}

async function writeSection(
  table: string,
  run: { runs: number; requests: number; baseline?: string; loadStart: string; started: Date },
): Promise<void> {
  const machine = await describeMachine();
  const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
  const file = `${root}/BENCHMARKS.md`;
  const command =
    `deno run -A bench/api_transport.ts --runs ${run.runs} --requests ${run.requests}` +
    (run.baseline === undefined ? "" : " --baseline DIR") + " --write";
  const section = [
    SECTION_BEGIN,
    "",
    "## Kubernetes API transport",
    "",
    `Written by \`${command}\` on ${run.started.toISOString().slice(0, 16).replace("T", " ")} ` +
    "UTC; not by the suite, which keeps this section when it rewrites the file.",
    "",
    "Requests to the API fixture (`tests/_support/api_fixture.ts`, HTTPS on loopback) from " +
    "fresh processes, alternating: Deno's own `fetch` with `Deno.createHttpClient({ caCerts })` " +
    "(the floor), our `createKubeApi` GETting a CiliumNode and merge-patching its label " +
    `(${run.requests} GETs, then a third as many PATCHes, per process; ${run.runs} processes ` +
    "of each kind), and the client loaded without a request (the memory floor). " +
    (run.baseline === undefined ? "" : "`before` is the code before the transport change " +
      "(`DIR` from `git archive 6307bb0`: `fetch` with `caCerts`, HTTP/2, kept-alive), " +
      "`after` this one (`node:https` with `ca`, HTTP/1.1, a connection per request), " +
      "measured in the same run. ") +
    "Latencies are medians and 95th percentiles over all processes, without each process's " +
    "first request, shown apart; RSS is the median after a forced GC. `after` opens a new TLS " +
    "connection for every request (under Deno a request cut off on a reused connection holds " +
    "the process until the server answers; see `src/kube/transport.ts`), so each of its " +
    "requests includes a handshake that `before` paid once per process. A check sends one to " +
    "three requests per interval.",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores (shared with other work; load average ` +
    `${run.loadStart} at the start, ${machine.loadAverage} at the end), ` +
    `${machine.memoryGiB} GiB, ${machine.kernel}, Deno ${machine.deno}.`,
    "",
    table,
    "",
    SECTION_END,
  ].join("\n");
  const current = await Deno.readTextFile(file);
  const [old] = ownedSections(current);
  const next = old === undefined
    ? `${current.trimEnd()}\n\n${section}\n`
    : current.replace(old, section);
  await Deno.writeTextFile(file, next);
  await mustRun([Deno.execPath(), "fmt", "--quiet", file], { cwd: root });
  console.log(`wrote the API transport section of ${file}`);
}

if (import.meta.main) await main();
