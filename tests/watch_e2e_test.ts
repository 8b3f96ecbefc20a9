/**
 * End to end for `-watch`: the real program, started with the `monitor` task's
 * permissions, runs as a daemon with `-interval=300` in a network namespace with real
 * iptables (nf_tables) and reports to the API fixture through a veth pair. With an
 * interval that long, any reaction within seconds comes from the watcher. Judged from
 * outside: the label and Events the fixture stores, the CiliumNode reads it recorded
 * (one per check), the daemon's child processes in /proc, and what the daemon logged.
 */

import assert from "node:assert/strict";
import { ApiFixture } from "./_support/api_fixture.ts";
import {
  type DaemonProcess,
  delay,
  lastLines,
  startDaemon,
  waitFor as waitForCondition,
} from "./_support/daemon.ts";
import { type Netns, withNetns } from "./_support/netns.ts";
import { requires } from "./_support/requires.ts";
import { linkNetns } from "./_support/veth.ts";

const LABEL = "kubernetes.azure.com/user-iptables-rules";
const UNEXPECTED = "UnexpectedIPTablesRules";
const USER_RULE = ["INPUT", "-s", "203.0.113.77/32", "-j", "DROP"];
const SECOND_RULE = ["INPUT", "-s", "203.0.113.78/32", "-j", "DROP"];
/** What the issue promises: a change shows on the label within 5 s. */
const REACTION_MS = 5_000;
/** A generous hang guard for everything else. */
const DEADLINE_MS = 20_000;

const needs = requires({
  root: true,
  commands: ["ip", "iptables-nft", "iptables-nft-restore", "xtables-monitor", "openssl"],
});

/** Polls `condition` until it holds, within this file's deadline by default. */
function waitFor(
  what: string,
  daemon: DaemonProcess,
  condition: () => boolean,
  timeoutMs = DEADLINE_MS,
): Promise<void> {
  return waitForCondition(what, daemon, condition, timeoutMs);
}

/** The PIDs of the live (not zombie) processes whose parent is `ppid` and comm is `name`. */
function childrenNamed(ppid: number, name: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // ended meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split at the last ")".
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const [state, parent] = stat.slice(close + 2).split(" ");
    if (comm === name && Number(parent) === ppid && state !== "Z") found.push(Number(entry.name));
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] !== "Z";
  } catch {
    return false;
  }
}

function burst(rules: number): string {
  const lines = ["*filter", ":AIM-BURST - [0:0]"];
  for (let i = 0; i < rules; i++) {
    lines.push(`-A AIM-BURST -s 10.${(i >> 8) & 255}.${i & 255}.1/32 -j RETURN`);
  }
  lines.push("COMMIT", "");
  return lines.join("\n");
}

async function iptables(ns: Netns, args: string[]): Promise<void> {
  await ns.exec("iptables-nft", ["-w", "30", ...args]);
}

Deno.test({
  name: "-watch e2e: reacts within seconds, debounces bursts, survives its monitor's death",
  ignore: needs.ignore,
  fn: (t) =>
    withNetns(async (ns) => {
      const link = await linkNetns(ns);
      let api: ApiFixture | undefined;
      const daemons: DaemonProcess[] = [];
      try {
        api = await ApiFixture.start({ hostname: link.hostAddress });
        const fixture = api;
        const spawn = (node: string, args: string[]) => {
          fixture.seedCiliumNode(node);
          fixture.seedNode(node);
          const daemon = startDaemon({
            netns: ns,
            nodeName: node,
            args: [
              "-interval=300",
              `-kubeconfig=${fixture.kubeconfigPath}`,
              "-input=patterns/ipv4",
              "-v=2",
              ...args,
            ],
            extraRead: [fixture.kubeconfigPath],
          });
          daemons.push(daemon);
          return daemon;
        };
        const label = (node: string) => fixture.labels(node)?.[LABEL];
        const checks = (node: string) =>
          fixture.requests({ method: "GET", path: `/apis/cilium.io/v2/ciliumnodes/${node}` })
            .filter((request) => request.status === 200).length;

        const watched = "aim-watch-w";
        const plain = "aim-watch-p";
        const daemon = spawn(watched, ["-watch", "-events"]);
        const plainDaemon = spawn(plain, []);
        const killed = "aim-watch-k";
        const killedDaemon = spawn(killed, ["-watch"]);
        await waitFor(`label "false" on ${watched}`, daemon, () => label(watched) === "false");
        await waitFor(`label "false" on ${plain}`, plainDaemon, () => label(plain) === "false");
        // Without stdbuf the monitor's events arrive in 4 KiB blocks (see src/watch.ts).
        assert.doesNotMatch(
          daemon.stderr(),
          /cannot run stdbuf/,
          "the monitor task must be allowed to run stdbuf (--allow-run) for -watch",
        );

        await t.step("a user rule flips the label within 5 s, with the hint", async () => {
          await iptables(ns, ["-A", ...USER_RULE]);
          await waitFor(
            `label "true" on ${watched}`,
            daemon,
            () => label(watched) === "true",
            REACTION_MS,
          );
          const hint = /hint: last ruleset changes? seen from PID \d+ \(iptables-nft\)/;
          assert.match(daemon.stderr(), new RegExp(`new unexpected rule.*${hint.source}`));
          await waitFor(
            `an ${UNEXPECTED} Event`,
            daemon,
            () =>
              fixture.events("default").some((event) => JSON.stringify(event).includes(UNEXPECTED)),
          );
          const event = fixture.events("default").find((e) =>
            JSON.stringify(e).includes(UNEXPECTED)
          );
          assert.match(String(event?.message), hint, "the Event names the process as a hint");
          assert.match(String(event?.message), /203\.0\.113\.77/);
        });

        await t.step("removing it flips the label back within 5 s", async () => {
          await iptables(ns, ["-D", ...USER_RULE]);
          await waitFor(
            `label "false" on ${watched}`,
            daemon,
            () => label(watched) === "false",
            REACTION_MS,
          );
        });

        await t.step(
          "2,000 rule changes in one iptables-restore cost at most 3 checks",
          async () => {
            const before = checks(watched);
            await ns.restore("ipv4", "nft", burst(2_000));
            await waitFor(`label "true" on ${watched}`, daemon, () => label(watched) === "true");
            // Let every trailing trigger (debounce, monitor overrun and restart) play out.
            await delay(8_000);
            const spent = checks(watched) - before;
            assert.ok(spent >= 1 && spent <= 3, `${spent} checks for one burst`);
            await ns.restore("ipv4", "nft", "*filter\nCOMMIT\n");
            await waitFor(`label "false" on ${watched}`, daemon, () => label(watched) === "false");
          },
        );

        await t.step("a killed monitor is restarted and detection still works", async () => {
          const [monitor] = childrenNamed(daemon.pid, "xtables-monitor");
          assert.ok(monitor !== undefined, "the daemon runs xtables-monitor as its child");
          Deno.kill(monitor, "SIGKILL");
          await waitFor("a new xtables-monitor", daemon, () => {
            const now = childrenNamed(daemon.pid, "xtables-monitor");
            return now.length === 1 && now[0] !== monitor;
          });
          // Up for a second: changes from now on are seen by the new monitor.
          await delay(1_500);
          await iptables(ns, ["-A", ...SECOND_RULE]);
          await waitFor(
            `label "true" on ${watched} after the restart`,
            daemon,
            () => label(watched) === "true",
            REACTION_MS,
          );
          await iptables(ns, ["-D", ...SECOND_RULE]);
          await waitFor(
            `label "false" on ${watched}`,
            daemon,
            () => label(watched) === "false",
            REACTION_MS,
          );
        });

        await t.step("SIGTERM: exit 0 and the monitor is gone with it", async () => {
          const monitors = childrenNamed(daemon.pid, "xtables-monitor");
          assert.equal(monitors.length, 1);
          const exit = await daemon.stop("SIGTERM");
          assert.equal(exit.code, 0, lastLines(daemon.stderr()));
          assert.ok(!alive(monitors[0]), `xtables-monitor ${monitors[0]} outlived the daemon`);
        });

        await t.step("without -watch: no monitor child, no early checks", async () => {
          assert.deepEqual(childrenNamed(plainDaemon.pid, "xtables-monitor"), []);
          assert.doesNotMatch(plainDaemon.stderr(), /-watch:|xtables-monitor|re-checking early/);
          const before = checks(plain);
          await iptables(ns, ["-A", ...USER_RULE]);
          await delay(3_000);
          assert.equal(checks(plain), before, "a rule change alone starts no check");
          assert.equal(label(plain), "false", "it waits for its interval");
          await iptables(ns, ["-D", ...USER_RULE]);
        });

        await t.step("SIGKILL of the daemon: its monitor dies at the next change", async () => {
          await waitFor(
            `label "false" on ${killed}`,
            killedDaemon,
            () => label(killed) === "false",
          );
          const [monitor] = childrenNamed(killedDaemon.pid, "xtables-monitor");
          assert.ok(monitor !== undefined, "the daemon runs xtables-monitor as its child");
          await killedDaemon.kill(); // SIGKILL: no chance to stop its child
          // The orphan blocks in recv() until the kernel reports a change; writing that
          // line to a pipe without a reader kills it (SIGPIPE).
          await iptables(ns, ["-A", ...SECOND_RULE]);
          await iptables(ns, ["-D", ...SECOND_RULE]);
          const deadline = Date.now() + DEADLINE_MS;
          while (alive(monitor) && Date.now() < deadline) await delay(25);
          assert.ok(!alive(monitor), `orphaned xtables-monitor ${monitor} is still running`);
        });
      } finally {
        for (const daemon of daemons) {
          // SIGTERM first: a SIGKILLed daemon leaves its monitor behind until the next change.
          if (!daemon.exited()) await daemon.stop("SIGTERM", 5_000).catch(() => {});
          await daemon.kill();
        }
        await api?.stop();
        await link.remove();
      }
    }),
});
