/**
 * End to end: the real program, started with the `monitor` task's permissions and V8
 * flags, runs as a daemon (`-interval=1`) in network namespaces with real iptables and
 * talks HTTPS to the API fixture through a veth pair. Everything is judged from the
 * outside, as a new user would: the objects the fixture stores, the requests it
 * recorded, what the program printed and how it exited. Names and texts come from
 * DESIGN.md, not from the program's modules.
 *
 * One namespace ("rules") gets user rules added and removed; a second one stays clean
 * for the daemons whose cases need a clean node. To keep the file fast, every daemon is
 * started at the beginning (each costs ~2 s to load); each step then works with its
 * own daemon and its own node name, and ends it.
 *
 * Permissions: when the task's `--allow-read` names a fixed list, the fixture's kubeconfig
 * (a temporary file) is added to that list, as an operator running with `-kubeconfig`
 * outside it would have to; the allowlists are the shipped ones (`-input=patterns/ipv4`),
 * which the task may read either way.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { ApiFixture } from "./_support/api_fixture.ts";
import { type DaemonProcess, startDaemon, waitFor as waitForCondition } from "./_support/daemon.ts";
import { legacyKernelMissing, type Netns, withNetns } from "./_support/netns.ts";
import { requires } from "./_support/requires.ts";
import { linkNetns, type VethLink } from "./_support/veth.ts";

const LABEL = "kubernetes.azure.com/user-iptables-rules";
const UNEXPECTED = "UnexpectedIPTablesRules";
const RESOLVED = "UnexpectedIPTablesRulesResolved";
const BLOCKED = "BlockedIPTablesRule";
const COMPONENT = "azure-iptables-monitor";
const BLOCKED_TEXT =
  "A process attempted to add iptables rules to the node but was blocked since last check. " +
  "iptables rules blocked because EBPF Host Routing is enabled: aka.ms/acnsperformance";
const USER_RULE = ["INPUT", "-s", "203.0.113.7/32", "-j", "DROP"];
const LEGACY_RULE = ["INPUT", "-s", "203.0.113.9/32", "-j", "DROP"];
const EVENTS_PATH = "/api/v1/namespaces/default/events";
/** Every wait has a generous deadline; none of them measures speed. */
const DEADLINE_MS = 10_000;
/** Loading the program takes seconds, more with four starting at once on a busy machine. */
const STARTUP_DEADLINE_MS = 40_000;

const needs = requires({
  root: true,
  commands: ["ip", "iptables-nft", "iptables-nft-save", "openssl", "bpftool", "mount", "umount"],
});

/** An Event as the fixture stores it; the fields the design promises. */
const StoredEvent = z.object({
  metadata: z.object({ name: z.string(), namespace: z.string() }),
  involvedObject: z.object({
    kind: z.string(),
    apiVersion: z.string(),
    name: z.string(),
    uid: z.string().optional(),
  }),
  reason: z.string(),
  message: z.string(),
  type: z.string(),
  source: z.object({ component: z.string() }),
  count: z.number(),
  firstTimestamp: z.string(),
  lastTimestamp: z.string(),
});
type StoredEvent = z.infer<typeof StoredEvent>;

const EventBody = z.object({ reason: z.string(), involvedObject: z.object({ name: z.string() }) });
const LabelPatch = z.object({
  metadata: z.object({ labels: z.record(z.string(), z.string().nullable()) }),
});

function ciliumPath(node: string): string {
  return `/apis/cilium.io/v2/ciliumnodes/${node}`;
}

/** Polls `condition` until it holds, within this file's deadline by default. */
function waitFor(
  what: string,
  daemon: DaemonProcess,
  condition: () => boolean,
  timeoutMs = DEADLINE_MS,
): Promise<void> {
  return waitForCondition(what, daemon, condition, timeoutMs);
}

/** The fixture's view of one node: label, requests, Events. */
class NodeView {
  constructor(readonly api: ApiFixture, readonly node: string) {}

  label(): string | undefined {
    return this.api.labels(this.node)?.[LABEL];
  }

  /** CiliumNode reads the server answered with `status` (one per complete check). */
  gets(status = 200): number {
    return this.api.requests({ method: "GET", path: ciliumPath(this.node) })
      .filter((request) => request.status === status).length;
  }

  /** Every PATCH of the CiliumNode, answered or not. */
  patches() {
    return this.api.requests({ method: "PATCH", path: ciliumPath(this.node) });
  }

  /** The stored Events about this node with `reason`. */
  events(reason: string): StoredEvent[] {
    return this.api.events("default")
      .map((event) => StoredEvent.parse(event))
      .filter((event) => event.reason === reason && event.involvedObject.name === this.node);
  }

  /** How many Events about this node with `reason` were POSTed (created). */
  creations(reason: string): number {
    return this.api.requests({ method: "POST", path: EVENTS_PATH })
      .map((request) => EventBody.safeParse(JSON.parse(request.body)))
      .filter((parsed) =>
        parsed.success && parsed.data.reason === reason &&
        parsed.data.involvedObject.name === this.node
      ).length;
  }

  /** Waits until `checks` more complete checks happened (a CiliumNode GET each). */
  async checks(daemon: DaemonProcess, checks: number): Promise<void> {
    const target = this.gets() + checks;
    await waitFor(`${checks} more checks on ${this.node}`, daemon, () => this.gets() >= target);
  }
}

/** Asserts the upstream shape of an Event about `node` (DESIGN.md). */
function assertNodeEvent(
  event: StoredEvent,
  node: string,
  uid: string,
  since: number,
): void {
  assert.equal(event.metadata.namespace, "default");
  const name = /^(.+)\.(\d+)$/.exec(event.metadata.name);
  assert.ok(name !== null, `Event name ${event.metadata.name} is <node>.<unix-seconds>`);
  assert.equal(name[1], node);
  const seconds = Number(name[2]);
  assert.ok(
    seconds >= Math.floor(since / 1000) - 1 && seconds <= Date.now() / 1000 + 1,
    `Event name ${event.metadata.name} carries the time it was made`,
  );
  assert.deepEqual(event.involvedObject, { kind: "Node", apiVersion: "v1", name: node, uid });
  assert.equal(event.source.component, COMPONENT);
  assert.ok(Date.parse(event.lastTimestamp) >= Date.parse(event.firstTimestamp));
}

/** A private bpffs with a pinned array map (u32 key, u64 value, one entry). */
interface PinnedCounter {
  path: string;
  set(value: number): Promise<void>;
  remove(): Promise<void>;
}

async function mustRun(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`${command} ${args.join(" ")} failed: ${stderr}`);
  }
}

/** Not under /sys/fs/bpf: `ip netns exec` mounts its own /sys, hiding what is pinned there. */
async function pinnedCounter(): Promise<PinnedCounter> {
  const dir = await Deno.makeTempDir({ prefix: "aim-e2e-bpffs-" });
  let mounted = false;
  const remove = async () => {
    if (mounted) await mustRun("umount", [dir]);
    mounted = false;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await mustRun("mount", ["-t", "bpf", "bpf", dir]);
    mounted = true;
    const path = `${dir}/m`;
    await mustRun("bpftool", [
      ..."map create".split(" "),
      path,
      ..."type array key 4 value 8 entries 1 name aimtest".split(" "),
    ]);
    return {
      path,
      set: (value) =>
        mustRun("bpftool", [
          ..."map update pinned".split(" "),
          path,
          ..."key 0 0 0 0 value".split(" "),
          ...Array.from({ length: 8 }, (_, i) => String(i === 0 ? value : 0)),
        ]),
      remove,
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

async function iptables(ns: Netns, tool: string, args: string[]): Promise<void> {
  await ns.exec(tool, ["-w", "30", ...args]);
}

Deno.test({
  name: "daemon e2e: label, Events, faults, BPF counter and signals in network namespaces",
  ignore: needs.ignore,
  fn: (t) =>
    withNetns((rulesNs) =>
      withNetns(async (quietNs) => {
        const started = Date.now();
        let rulesLink: VethLink | undefined;
        let quietLink: VethLink | undefined;
        let api: ApiFixture | undefined;
        let counter: PinnedCounter | undefined;
        const daemons: DaemonProcess[] = [];
        try {
          rulesLink = await linkNetns(rulesNs);
          quietLink = await linkNetns(quietNs);
          // One server for both namespaces: the clean one routes to it through its own pair.
          api = await ApiFixture.start({ hostname: rulesLink.hostAddress });
          counter = await pinnedCounter();
          const pinned = counter;
          const fixture = api;
          const common = [
            "-interval=1",
            `-kubeconfig=${fixture.kubeconfigPath}`,
            "-input=patterns/ipv4",
          ];
          const spawn = (netns: Netns, nodeName: string, args: string[]) => {
            const daemon = startDaemon({
              netns,
              nodeName,
              args: [...common, ...args],
              extraRead: [fixture.kubeconfigPath],
            });
            daemons.push(daemon);
            return daemon;
          };

          const a = new NodeView(fixture, "aim-e2e-a");
          fixture.seedCiliumNode(a.node);
          const uidA = fixture.seedNode(a.node);
          const b = new NodeView(fixture, "aim-e2e-b"); // no CiliumNode yet
          const c = new NodeView(fixture, "aim-e2e-c");
          fixture.seedCiliumNode(c.node);
          const uidC = fixture.seedNode(c.node);
          const d = new NodeView(fixture, "aim-e2e-d");
          fixture.seedCiliumNode(d.node);

          const daemonA = spawn(rulesNs, a.node, ["-events"]);
          const daemonB = spawn(quietNs, b.node, []);
          const daemonC = spawn(quietNs, c.node, [
            "-checkMap",
            `-mapPath=${counter.path}`,
            "-events",
          ]);
          const daemonD = spawn(quietNs, d.node, ["-terminateOnSuccess"]);

          await t.step(
            "clean start: label false once, then no PATCH while nothing changes",
            async () => {
              await waitFor(
                `label "false" on ${a.node}`,
                daemonA,
                () => a.label() === "false",
                STARTUP_DEADLINE_MS,
              );
              const afterFirst = a.gets();
              await a.checks(daemonA, 3);
              assert.ok(a.gets() >= afterFirst + 3, "the CiliumNode is still read every check");
              const patches = a.patches();
              assert.equal(patches.length, 1, "one PATCH in total: the first check's");
              assert.equal(patches[0].contentType, "application/merge-patch+json");
              assert.deepEqual(
                LabelPatch.parse(JSON.parse(patches[0].body)).metadata.labels,
                { [LABEL]: "false" },
              );
              assert.deepEqual(a.events(UNEXPECTED), [], "a clean node gets no Warning");
            },
          );

          await t.step(
            "a user rule: label true, one UnexpectedIPTablesRules Event counting up",
            async () => {
              await iptables(rulesNs, "iptables-nft", ["-A", ...USER_RULE]);
              await waitFor(`label "true" on ${a.node}`, daemonA, () => a.label() === "true");
              await waitFor(
                `an ${UNEXPECTED} Event with count 3`,
                daemonA,
                () => a.events(UNEXPECTED).some((event) => event.count >= 3),
              );
              const events = a.events(UNEXPECTED);
              assert.equal(events.length, 1, "repeats update one Event, never create more");
              assert.equal(a.creations(UNEXPECTED), 1);
              const [event] = events;
              assertNodeEvent(event, a.node, uidA, started);
              assert.equal(event.type, "Warning");
              assert.match(event.message, /203\.0\.113\.7/, "the message shows the rule");
              const eventPatches = fixture.requests({
                method: "PATCH",
                path: `${EVENTS_PATH}/${event.metadata.name}`,
              });
              assert.ok(eventPatches.length >= 2, "the count rose by PATCHes of that Event");
              assert.equal(a.patches().length, 2, "the label was written once more, to true");
            },
          );

          await t.step(
            "the rule removed: label false again, and the warning is resolved",
            async () => {
              await iptables(rulesNs, "iptables-nft", ["-D", ...USER_RULE]);
              await waitFor(`label "false" on ${a.node}`, daemonA, () => a.label() === "false");
              await waitFor(`a ${RESOLVED} Event`, daemonA, () => a.events(RESOLVED).length > 0);
              const [resolved] = a.events(RESOLVED);
              assert.equal(resolved.type, "Normal");
              assertNodeEvent(resolved, a.node, uidA, started);
              await a.checks(daemonA, 2);
              assert.equal(a.events(RESOLVED).length, 1, "one Normal Event, not one per check");
              assert.equal(a.events(UNEXPECTED).length, 1, "no new warning on a clean node");
            },
          );

          await t.step(
            "a label changed or removed by hand is put back at the next check",
            async () => {
              for (const value of ["true", null]) {
                const before = a.patches().length;
                fixture.setLabel(a.node, LABEL, value);
                await waitFor(`label put back on ${a.node}`, daemonA, () => a.label() === "false");
                assert.equal(a.patches().length, before + 1, `one PATCH after ${value}`);
              }
            },
          );

          await t.step(
            "429 and 503 for a while: the daemon keeps going and converges",
            async () => {
              const path = ciliumPath(a.node);
              fixture.inject({ kind: "status", status: 429, retryAfter: "1" }, { path, times: 2 });
              fixture.inject({ kind: "status", status: 503 }, { path, times: 3 });
              await iptables(rulesNs, "iptables-nft", ["-A", ...USER_RULE]);
              await waitFor(
                `label "true" on ${a.node} after the faults`,
                daemonA,
                () => a.label() === "true",
                20_000,
              );
              const faulted = fixture.requests({ path }).filter((r) => r.fault !== undefined);
              assert.deepEqual(
                faulted.map((r) => r.status),
                [429, 429, 503, 503, 503],
                "every injected fault was met",
              );
              assert.match(daemonA.stderr(), /HTTP 503/, "the failed check says why");
              await iptables(rulesNs, "iptables-nft", ["-D", ...USER_RULE]);
              await waitFor(`label "false" on ${a.node}`, daemonA, () => a.label() === "false");
              assert.ok(!daemonA.exited());
            },
          );

          await t.step(
            "403 on the PATCH names the missing permission; the daemon goes on",
            async () => {
              const path = ciliumPath(a.node);
              // The server's own text names nothing: the daemon must say what is missing.
              fixture.inject(
                { kind: "status", status: 403, message: "denied by the test" },
                { method: "PATCH", path, times: 2 },
              );
              fixture.setLabel(a.node, LABEL, "true");
              await waitFor(
                `label put back on ${a.node} after two 403s`,
                daemonA,
                () => a.label() === "false",
                15_000,
              );
              const forbidden = a.patches().filter((request) => request.status === 403);
              assert.equal(forbidden.length, 2);
              const lines = daemonA.stderr().split("\n").filter((line) => line.includes("403"));
              assert.ok(
                lines.some((line) =>
                  /\bpatch\b/.test(line) && line.includes("ciliumnodes") &&
                  line.includes("cilium.io")
                ),
                `a log line names verb patch, resource ciliumnodes, group cilium.io:\n${
                  lines.join("\n")
                }`,
              );
              assert.ok(!daemonA.exited());
            },
          );

          await t.step({
            name: "a legacy-backend rule counts too",
            ignore: legacyKernelMissing("ipv4") !== undefined,
            fn: async () => {
              await iptables(rulesNs, "iptables-legacy", ["-A", ...LEGACY_RULE]);
              await waitFor(`label "true" on ${a.node}`, daemonA, () => a.label() === "true");
              const logged = daemonA.stderr().split("\n").filter((line) =>
                line.includes("203.0.113.9")
              );
              assert.ok(logged.some((line) => line.includes("legacy")), logged.join("\n"));
              await iptables(rulesNs, "iptables-legacy", ["-D", ...LEGACY_RULE]);
              await waitFor(`label "false" on ${a.node}`, daemonA, () => a.label() === "false");
            },
          });

          await t.step("SIGTERM: exit 0 within 5 s", async () => {
            const exit = await daemonA.stop("SIGTERM");
            assert.equal(exit.code, 0, daemonA.stderr());
            assert.ok(
              exit.elapsedMs < 5_000,
              `ended ${exit.elapsedMs.toFixed(0)} ms after SIGTERM`,
            );
            assert.doesNotMatch(daemonA.stderr(), /internal error|^\s+at /m);
          });

          await t.step(
            "a CiliumNode missing at start is logged plainly, labelled once it exists",
            async () => {
              await waitFor(
                `two checks that found no CiliumNode ${b.node}`,
                daemonB,
                () => b.gets(404) >= 2,
                STARTUP_DEADLINE_MS,
              );
              assert.match(daemonB.stderr(), new RegExp(`CiliumNode ${b.node} does not exist`));
              assert.doesNotMatch(daemonB.stderr(), /internal error|^\s+at |Error:/m);
              assert.equal(b.patches().length, 0);
              fixture.seedCiliumNode(b.node);
              await waitFor(`label "false" on ${b.node}`, daemonB, () => b.label() === "false");
              assert.equal(b.patches().length, 1);
            },
          );

          await t.step("SIGTERM while the API is slow: exit 0 within about 5 s", async () => {
            const path = ciliumPath(b.node);
            fixture.inject({ kind: "slow", delayMs: 10_000 }, { path, times: 3 });
            await waitFor(
              "a request held by the slow API",
              daemonB,
              () =>
                fixture.requests({ path }).some((request) =>
                  request.fault === "slow" && request.status === undefined
                ),
            );
            const exit = await daemonB.stop("SIGTERM");
            assert.equal(exit.code, 0, daemonB.stderr());
            assert.ok(
              exit.elapsedMs < 6_000,
              `ended ${exit.elapsedMs.toFixed(0)} ms after SIGTERM`,
            );
          });

          await t.step(
            "a bumped BPF counter sends one BlockedIPTablesRule Event, none without",
            async () => {
              // The first check reads the baseline; the third starts after the second read.
              await waitFor(
                `three checks on ${c.node}`,
                daemonC,
                () => c.gets() >= 3,
                STARTUP_DEADLINE_MS,
              );
              assert.deepEqual(c.events(BLOCKED), [], "no bump, no Event");
              assert.doesNotMatch(daemonC.stderr(), /BPF map/, "the map was read");
              await pinned.set(1);
              await waitFor(`a ${BLOCKED} Event`, daemonC, () => c.events(BLOCKED).length > 0);
              await c.checks(daemonC, 2);
              const events = c.events(BLOCKED);
              assert.equal(events.length, 1);
              assert.equal(c.creations(BLOCKED), 1);
              const [event] = events;
              assert.equal(event.count, 1, "no further bump, no further occurrence");
              assert.equal(event.type, "Warning");
              assert.equal(event.message, BLOCKED_TEXT);
              assertNodeEvent(event, c.node, uidC, started);
              assert.deepEqual(c.events(UNEXPECTED), []);
              const exit = await daemonC.stop("SIGTERM");
              assert.equal(exit.code, 0, daemonC.stderr());
            },
          );

          await t.step(
            "-terminateOnSuccess on a clean node: exit 0 after one check, label false",
            async () => {
              let timer: ReturnType<typeof setTimeout> | undefined;
              const hang = new Promise<"hang">((resolve) => {
                timer = setTimeout(() => resolve("hang"), STARTUP_DEADLINE_MS);
              });
              const status = await Promise.race([daemonD.status, hang]);
              clearTimeout(timer);
              assert.notEqual(status, "hang", "it exited by itself");
              assert.equal(status !== "hang" && status.code, 0, daemonD.stderr());
              assert.equal(d.label(), "false");
              assert.equal(d.gets(), 1, "exactly one check");
              assert.equal(d.patches().length, 1);
            },
          );
        } finally {
          for (const daemon of daemons) await daemon.kill();
          await api?.stop();
          await counter?.remove();
          await quietLink?.remove();
          await rulesLink?.remove();
        }
      })
    ),
});
