/**
 * End to end for the nft view in the daemon: the real program (the `monitor` task's
 * permissions) in a network namespace with real iptables and nft, reporting to the API
 * fixture through a veth pair. The issue's attack: a user rule, then a native nft rule
 * in iptables' own filter table, which makes iptables-nft-save print only ``# Table
 * `filter' is incompatible`` (and exit 0). The label must stay "true" and no Resolved
 * Event may be sent while a hidden rule exists; with `-watch` and a long interval, a
 * native table alone flips the label within seconds.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { generateKubeProxyNft } from "../bench/kube_proxy_nft.ts";
import { ApiFixture } from "./_support/api_fixture.ts";
import { type DaemonProcess, startDaemon, waitFor as waitForCondition } from "./_support/daemon.ts";
import { loadNft, withNetns } from "./_support/netns.ts";
import { requires } from "./_support/requires.ts";
import { linkNetns } from "./_support/veth.ts";

const LABEL = "kubernetes.azure.com/user-iptables-rules";
const UNEXPECTED = "UnexpectedIPTablesRules";
const RESOLVED = "UnexpectedIPTablesRulesResolved";
const DEADLINE_MS = 20_000;
const STARTUP_DEADLINE_MS = 40_000;
/** Several checks with Events, on a loaded 2-core machine: pacing only, not a timing claim. */
const CHECKS_DEADLINE_MS = 60_000;
/** What -watch promises: a change shows on the label within seconds. */
const REACTION_MS = 5_000;

const needs = requires({
  root: true,
  commands: ["ip", "iptables-nft", "iptables-nft-save", "nft", "xtables-monitor", "openssl"],
});

const StoredEvent = z.object({
  reason: z.string(),
  message: z.string(),
  involvedObject: z.object({ name: z.string() }),
});

function waitFor(
  what: string,
  daemon: DaemonProcess,
  condition: () => boolean,
  timeoutMs = DEADLINE_MS,
): Promise<void> {
  return waitForCondition(what, daemon, condition, timeoutMs);
}

Deno.test({
  name:
    "nft view e2e: a hidden rule keeps the label true with no Resolved Event; -watch sees native tables",
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
            args: [`-kubeconfig=${fixture.kubeconfigPath}`, "-input=patterns/ipv4", ...args],
            extraRead: [fixture.kubeconfigPath],
          });
          daemons.push(daemon);
          return daemon;
        };
        const label = (node: string) => fixture.labels(node)?.[LABEL];
        const events = (node: string, reason: string) =>
          fixture.events("default").map((event) => StoredEvent.parse(event))
            .filter((event) => event.reason === reason && event.involvedObject.name === node);
        const checks = (node: string) =>
          fixture.requests({ method: "GET", path: `/apis/cilium.io/v2/ciliumnodes/${node}` })
            .filter((request) => request.status === 200).length;

        const node = "aim-nft-e2e";
        const daemon = spawn(node, ["-interval=1", "-events"]);
        const watched = "aim-nft-watch";
        const watcher = spawn(watched, ["-interval=300", "-watch"]);
        await waitFor(`label "false" on ${node}`, daemon, () =>
          label(node) === "false", STARTUP_DEADLINE_MS);
        await waitFor(`label "false" on ${watched}`, watcher, () =>
          label(watched) === "false", STARTUP_DEADLINE_MS);

        await t.step("the issue's attack: the label stays true, no Resolved Event", async () => {
          await ns.exec("iptables-nft", [
            "-w",
            "30",
            "-A",
            "INPUT",
            "-s",
            "6.6.6.6/32",
            "-j",
            "DROP",
          ]);
          await waitFor(`label "true" on ${node}`, daemon, () =>
            label(node) === "true");
          await loadNft(ns, "add rule ip filter INPUT numgen inc mod 2 0 drop\n");
          const saved = await ns.exec("iptables-nft-save");
          assert.match(saved, /# Table `filter' is incompatible, use 'nft' tool\./);
          const before = checks(node);
          await waitFor("4 more checks", daemon, () =>
            checks(node) >= before + 4, CHECKS_DEADLINE_MS);
          assert.equal(label(node), "true");
          assert.deepEqual(events(node, RESOLVED), [], "no Resolved while the rules are live");
          await waitFor(
            "the Event names the hidden rule",
            daemon,
            () =>
              events(node, UNEXPECTED).some((e) =>
                e.message.includes("numgen inc mod 2 0 drop")
              ),
          );
          assert.match(
            daemon.stderr(),
            /unexpected rule in ipv4 ip filter \(nft\): add rule ip filter INPUT numgen inc mod 2 0 drop/,
          );
        });

        await t.step("a native inet table alone keeps it true; removing it resolves", async () => {
          await loadNft(
            ns,
            "add table inet sneaky\nadd chain inet sneaky in { type filter hook input priority -10; }\n" +
              "add rule inet sneaky in tcp dport 22 drop\n",
          );
          await loadNft(ns, "delete table ip filter\n");
          const before = checks(node);
          await waitFor("3 more checks", daemon, () =>
            checks(node) >= before + 3, CHECKS_DEADLINE_MS);
          assert.equal(label(node), "true");
          assert.deepEqual(events(node, RESOLVED), []);
          await loadNft(ns, "delete table inet sneaky\n");
          await waitFor(`label "false" on ${node}`, daemon, () =>
            label(node) === "false");
          await waitFor(`a ${RESOLVED} Event`, daemon, () =>
            events(node, RESOLVED).length === 1);
        });

        await t.step("-watch: a native table flips the label within seconds", async () => {
          assert.equal(label(watched), "false");
          await loadNft(
            ns,
            "add table netdev early\nadd chain netdev early in { type filter hook ingress device lo priority -500; }\n" +
              "add rule netdev early in ip saddr 192.0.2.1 drop\n",
          );
          await waitFor(`label "true" on ${watched}`, watcher, () =>
            label(watched) === "true", REACTION_MS);
          await loadNft(ns, "delete table netdev early\n");
          await waitFor(`label "false" on ${watched}`, watcher, () =>
            label(watched) === "false", REACTION_MS);
        });

        await t.step(
          "-watch: an element added to a set alone (no xtables-monitor event) re-checks",
          async () => {
            // A table whose objects the default allowlist accepts: kube-proxy's. Its map
            // element changes print only a NEWGEN line in xtables-monitor.
            const before = checks(watched);
            await loadNft(ns, await generateKubeProxyNft({ family: "ipv4", services: 3 }));
            await waitFor(
              "a check after the table",
              watcher,
              () =>
                checks(watched) > before,
              REACTION_MS,
            );
            await new Promise((resolve) =>
              setTimeout(resolve, 1_500)
            ); // let the debounce settle
            assert.equal(label(watched), "false", "kube-proxy's own objects are allowed");
            await loadNft(
              ns,
              "add element ip kube-proxy service-ips { 10.96.0.1 . tcp . 22 : drop }\n",
            );
            await waitFor(
              `label "true" on ${watched}`,
              watcher,
              () =>
                label(watched) === "true",
              REACTION_MS,
            );
            await loadNft(ns, "delete table ip kube-proxy\n");
            await waitFor(
              `label "false" on ${watched}`,
              watcher,
              () =>
                label(watched) === "false",
              REACTION_MS,
            );
          },
        );
      } finally {
        for (const daemon of daemons) {
          if (!daemon.exited()) {
            await daemon.stop("SIGTERM", 5_000).catch(() => {});
          }
          await daemon.kill();
        }
        await api?.stop();
        await link.remove();
      }
    }),
});
