/**
 * `-watch` benchmark: detection latency (a user rule added or removed -> the label
 * written on the API fixture) with and without `-watch`, and what a busy kube-proxy
 * (a full rewrite of a generated kube-proxy ruleset every few seconds) costs the daemon
 * with `-watch`: CPU (user+sys from /proc/PID/stat, the daemon's own and its children's:
 * iptables-save and xtables-monitor) and checks (CiliumNode GETs on the fixture).
 *
 * The daemon runs exactly as `deno task monitor` runs it, in a throw-away network
 * namespace with real iptables (nf_tables), reporting over a veth pair to the API fixture.
 *
 * Run (root): `deno run -A bench/watch_latency.ts [--small] [--json]`.
 * `--small`: 100 services, 3 samples, 20 s of churn (about 2 minutes); default: 1,000
 * services, 6 samples, 60 s of churn (about 6 minutes). Prints the figures as Markdown
 * (or JSON with `--json`) on stdout; progress goes to stderr.
 *
 * @module
 */
import { ApiFixture } from "../tests/_support/api_fixture.ts";
import { type DaemonProcess, startDaemon } from "../tests/_support/daemon.ts";
import { type Netns, withNetns } from "../tests/_support/netns.ts";
import { linkNetns } from "../tests/_support/veth.ts";
import { median } from "./measure.ts";
import { generateRuleset } from "./ruleset.ts";

const LABEL = "kubernetes.azure.com/user-iptables-rules";
const INPUT = "patterns/ipv4";
const SEED = 20240611;
const USER_RULE = ["INPUT", "-s", "203.0.113.99/32", "-j", "DROP"];
/** Interval of the daemon without -watch: short, so that the run ends in minutes. */
const PLAIN_INTERVAL_S = 10;
/** How often the label is polled while timing: the resolution of every latency. */
const POLL_MS = 5;
/** Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux everywhere). */
const USER_HZ = 100;

interface Plan {
  services: number;
  samples: number;
  churnSeconds: number;
  rewriteEverySeconds: number;
}

const SMALL: Plan = { services: 100, samples: 3, churnSeconds: 20, rewriteEverySeconds: 3 };
const FULL: Plan = { services: 1_000, samples: 6, churnSeconds: 60, rewriteEverySeconds: 3 };

function progress(message: string): void {
  console.error(`[watch bench] ${message}`);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** CPU seconds of a process so far: its own (utime+stime) and its reaped children's. */
function cpuOf(pid: number): { self: number; children: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after "pid (comm) ": state ppid ... utime is the 12th, cstime the 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const [utime, stime, cutime, cstime] = fields.slice(11, 15);
  return { self: (utime + stime) / USER_HZ, children: (cutime + cstime) / USER_HZ };
}

/** CPU seconds of the live children named `name` of `ppid` (not yet in cutime/cstime). */
function liveChildrenCpu(ppid: number, name: string): number {
  let total = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (comm !== name || Number(fields[1]) !== ppid) continue;
      total += (Number(fields[11]) + Number(fields[12])) / USER_HZ;
    } catch {
      // ended meanwhile
    }
  }
  return total;
}

/** Waits until `condition` holds, polling every POLL_MS; returns the milliseconds waited. */
async function timeUntil(
  what: string,
  daemon: DaemonProcess,
  condition: () => boolean,
  timeoutMs: number,
): Promise<number> {
  const started = performance.now();
  while (!condition()) {
    if (daemon.exited()) {
      throw new Error(`the daemon ended waiting for ${what}:\n${daemon.stderr()}`);
    }
    if (performance.now() - started > timeoutMs) {
      throw new Error(`no ${what} within ${timeoutMs} ms:\n${daemon.stderr().slice(-3000)}`);
    }
    await delay(POLL_MS);
  }
  return performance.now() - started;
}

interface Context {
  ns: Netns;
  api: ApiFixture;
  dump: string;
}

function startNode(context: Context, node: string, args: string[]): DaemonProcess {
  context.api.seedCiliumNode(node);
  context.api.seedNode(node);
  return startDaemon({
    netns: context.ns,
    nodeName: node,
    args: [`-kubeconfig=${context.api.kubeconfigPath}`, `-input=${INPUT}`, ...args],
    extraRead: [context.api.kubeconfigPath],
  });
}

function labelOf(context: Context, node: string): string | undefined {
  return context.api.labels(node)?.[LABEL];
}

function checksOf(context: Context, node: string): number {
  return context.api.requests({ method: "GET", path: `/apis/cilium.io/v2/ciliumnodes/${node}` })
    .filter((request) => request.status === 200).length;
}

/** Add a user rule, time until the label says "true"; remove it, time until "false". */
async function latencies(
  context: Context,
  node: string,
  daemon: DaemonProcess,
  samples: number,
  timeoutMs: number,
  spacingMs: () => number,
): Promise<{ add: number[]; remove: number[] }> {
  const add: number[] = [];
  const remove: number[] = [];
  for (let i = 0; i < samples; i++) {
    await delay(spacingMs());
    const added = performance.now();
    await context.ns.exec("iptables-nft", ["-w", "30", "-A", ...USER_RULE]);
    await timeUntil("label true", daemon, () => labelOf(context, node) === "true", timeoutMs);
    add.push(performance.now() - added);
    await delay(spacingMs());
    const removed = performance.now();
    await context.ns.exec("iptables-nft", ["-w", "30", "-D", ...USER_RULE]);
    await timeUntil("label false", daemon, () => labelOf(context, node) === "false", timeoutMs);
    remove.push(performance.now() - removed);
    progress(`sample ${i + 1}/${samples}: +${add[i].toFixed(0)} ms, -${remove[i].toFixed(0)} ms`);
  }
  return { add, remove };
}

interface ChurnFigures {
  seconds: number;
  rewrites: number;
  rulesPerRewrite: number;
  checks: number;
  daemonCpuSeconds: number;
  childrenCpuSeconds: number;
  restoreCpuNote: string;
}

/** Rewrites the whole ruleset every few seconds; measures the daemon's CPU and checks. */
async function churn(
  context: Context,
  node: string,
  daemon: DaemonProcess,
  plan: Plan,
  ruleCount: number,
): Promise<ChurnFigures> {
  const before = cpuOf(daemon.pid);
  const monitorBefore = liveChildrenCpu(daemon.pid, "xtables-monitor");
  const checksBefore = checksOf(context, node);
  const started = performance.now();
  let rewrites = 0;
  while (performance.now() - started < plan.churnSeconds * 1000) {
    const round = performance.now();
    await context.ns.restore("ipv4", "nft", context.dump);
    rewrites++;
    const left = plan.rewriteEverySeconds * 1000 - (performance.now() - round);
    if (left > 0) await delay(left);
  }
  // Let the last trigger play out before reading the counters.
  await delay(3_000);
  const seconds = (performance.now() - started) / 1000;
  const after = cpuOf(daemon.pid);
  const monitorAfter = liveChildrenCpu(daemon.pid, "xtables-monitor");
  return {
    seconds,
    rewrites,
    rulesPerRewrite: ruleCount,
    checks: checksOf(context, node) - checksBefore,
    daemonCpuSeconds: after.self - before.self,
    childrenCpuSeconds: after.children - before.children + monitorAfter - monitorBefore,
    restoreCpuNote: "iptables-restore itself (kube-proxy's cost) is not counted",
  };
}

function stats(values: number[]): { median: number; max: number; min: number } {
  return { median: median(values), max: Math.max(...values), min: Math.min(...values) };
}

function ms(value: number): string {
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(0)} ms`;
}

async function main(args: string[]): Promise<void> {
  const plan = args.includes("--small") ? SMALL : FULL;
  const ruleset = generateRuleset({ services: plan.services, family: "ipv4", seed: SEED });
  const results = await withNetns(async (ns) => {
    const link = await linkNetns(ns);
    const api = await ApiFixture.start({ hostname: link.hostAddress });
    const daemons: DaemonProcess[] = [];
    try {
      const context: Context = { ns, api, dump: ruleset.dump };
      await ns.restore("ipv4", "nft", ruleset.dump);
      progress(`loaded ${ruleset.ruleCount} kube-proxy rules (${plan.services} services)`);

      const watched = startNode(context, "bench-watch", ["-interval=300", "-watch"]);
      daemons.push(watched);
      await timeUntil(
        "first label",
        watched,
        () => labelOf(context, "bench-watch") === "false",
        60_000,
      );
      if (/cannot run stdbuf/.test(watched.stderr())) {
        progress("WARNING: stdbuf could not run: -watch works on 4 KiB blocks of events");
      }
      progress("latency with -watch (-interval=300)");
      // Changes further apart than the watcher's longest debounce gap (3 s): each one is a
      // lone change on a quiet node.
      const withWatch = await latencies(
        context,
        "bench-watch",
        watched,
        plan.samples,
        60_000,
        () => 3_500 + Math.random() * 1_000,
      );
      progress(`busy kube-proxy: a rewrite every ${plan.rewriteEverySeconds} s`);
      const busy = await churn(context, "bench-watch", watched, plan, ruleset.ruleCount);
      await watched.stop("SIGTERM");

      const plain = startNode(context, "bench-plain", [`-interval=${PLAIN_INTERVAL_S}`]);
      daemons.push(plain);
      await timeUntil(
        "first label",
        plain,
        () => labelOf(context, "bench-plain") === "false",
        60_000,
      );
      progress(`latency without -watch (-interval=${PLAIN_INTERVAL_S})`);
      const withoutWatch = await latencies(
        context,
        "bench-plain",
        plain,
        plan.samples,
        PLAIN_INTERVAL_S * 3000,
        // A uniformly random phase against the interval timer, as a real change has.
        () => Math.random() * PLAIN_INTERVAL_S * 1000,
      );
      progress("busy kube-proxy without -watch, for comparison");
      const busyPlain = await churn(context, "bench-plain", plain, plan, ruleset.ruleCount);
      await plain.stop("SIGTERM");
      return { withWatch, withoutWatch, busy, busyPlain };
    } finally {
      for (const daemon of daemons) await daemon.kill();
      await api.stop();
      await link.remove();
    }
  });

  const summary = {
    plan,
    rules: ruleset.ruleCount,
    latencyMs: {
      watch: { add: stats(results.withWatch.add), remove: stats(results.withWatch.remove) },
      [`interval${PLAIN_INTERVAL_S}`]: {
        add: stats(results.withoutWatch.add),
        remove: stats(results.withoutWatch.remove),
      },
    },
    busyKubeProxy: { watch: results.busy, plain: results.busyPlain },
  };
  if (args.includes("--json")) {
    console.log(JSON.stringify(summary, null, 2));
    return;
  }
  const row = (name: string, values: number[]) => {
    const s = stats(values);
    return `| ${name} | ${ms(s.median)} | ${ms(s.min)} | ${ms(s.max)} |`;
  };
  const cpu = (figures: ChurnFigures) => {
    const share = (seconds: number) => `${((100 * seconds) / figures.seconds).toFixed(1)} %`;
    return `${figures.daemonCpuSeconds.toFixed(2)} s (${share(figures.daemonCpuSeconds)}) + ` +
      `children ${figures.childrenCpuSeconds.toFixed(2)} s (${share(figures.childrenCpuSeconds)})`;
  };
  console.log(
    [
      `## -watch: detection latency and cost (${plan.services} services, ${ruleset.ruleCount} rules)`,
      "",
      `Change = \`iptables-nft -A/-D\` of one user rule; latency = from before the command to ` +
      `the label on the API fixture (polled every ${POLL_MS} ms); ${plan.samples} samples each.`,
      "",
      "| daemon | median | min | max |",
      "| --- | --- | --- | --- |",
      row("-watch -interval=300, rule added", results.withWatch.add),
      row("-watch -interval=300, rule removed", results.withWatch.remove),
      row(`-interval=${PLAIN_INTERVAL_S}, rule added`, results.withoutWatch.add),
      row(`-interval=${PLAIN_INTERVAL_S}, rule removed`, results.withoutWatch.remove),
      "",
      `Without -watch the wait is the rest of the interval: about half of it on average, up to ` +
      `the interval plus its 10 % jitter (for the default -interval=300: ~160 s mean, 330 s max).`,
      "",
      `Busy kube-proxy: the whole ruleset restored every ${plan.rewriteEverySeconds} s ` +
      `(${results.busy.rewrites} rewrites of ${ruleset.ruleCount} rules in ` +
      `${results.busy.seconds.toFixed(0)} s).`,
      "",
      "| daemon | checks | CPU user+sys: daemon + children (iptables-save, xtables-monitor) |",
      "| --- | --- | --- |",
      `| -watch -interval=300 | ${results.busy.checks} | ${cpu(results.busy)} |`,
      `| -interval=${PLAIN_INTERVAL_S} | ${results.busyPlain.checks} | ${cpu(results.busyPlain)} |`,
      "",
      `(${results.busy.restoreCpuNote}.)`,
    ].join("\n"),
  );
}

if (import.meta.main) {
  await main(Deno.args);
}
