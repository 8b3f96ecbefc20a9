/**
 * The daemon against a rule written to blind it: in a namespace with real iptables-nft,
 * talking HTTPS to the API fixture, a comment with a raw newline and dump syntax turns the
 * label to "true" and keeps it there, with no Resolved Event, for as long as the rule is
 * live (the case: before, the whole dump was rejected and the label stayed
 * "false"); removing it brings "false" and one Resolved Event, so the test can tell.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { ApiFixture } from "./_support/api_fixture.ts";
import { type DaemonProcess, startDaemon, waitFor } from "./_support/daemon.ts";
import { withNetns } from "./_support/netns.ts";
import { requires } from "./_support/requires.ts";
import { linkNetns, type VethLink } from "./_support/veth.ts";

const LABEL = "kubernetes.azure.com/user-iptables-rules";
const UNEXPECTED = "UnexpectedIPTablesRules";
const RESOLVED = "UnexpectedIPTablesRulesResolved";
const NODE = "aim-hostile-d";
/** The comment of the hidden rule: a newline, then what looks like the end of the dump. */
const COMMENT = "x\nCOMMIT\n*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT";
const DEADLINE_MS = 20_000;
const STARTUP_DEADLINE_MS = 40_000;

const needs = requires({
  root: true,
  commands: ["ip", "iptables-nft", "iptables-nft-save", "openssl"],
});

const StoredEvent = z.object({
  reason: z.string(),
  involvedObject: z.object({ name: z.string() }),
  count: z.number(),
});

Deno.test({
  name: "daemon: a comment with a newline and dump syntax keeps the label true, no Resolved",
  ignore: needs.ignore,
  fn: () =>
    withNetns(async (ns) => {
      let link: VethLink | undefined;
      let api: ApiFixture | undefined;
      let daemon: DaemonProcess | undefined;
      try {
        link = await linkNetns(ns);
        api = await ApiFixture.start({ hostname: link.hostAddress });
        const fixture = api;
        fixture.seedCiliumNode(NODE);
        fixture.seedNode(NODE);
        const label = () => fixture.labels(NODE)?.[LABEL];
        const events = (reason: string) =>
          fixture.events("default").map((event) => StoredEvent.parse(event))
            .filter((event) => event.reason === reason && event.involvedObject.name === NODE);
        const checks = () =>
          fixture.requests({ method: "GET", path: `/apis/cilium.io/v2/ciliumnodes/${NODE}` })
            .filter((request) => request.status === 200).length;
        const running = startDaemon({
          netns: ns,
          nodeName: NODE,
          args: [
            "-interval=1",
            `-kubeconfig=${fixture.kubeconfigPath}`,
            "-input=patterns/ipv4",
            "-events",
          ],
          extraRead: [fixture.kubeconfigPath],
        });
        daemon = running;

        await waitFor('label "false"', running, () => label() === "false", STARTUP_DEADLINE_MS);
        const rule = ["INPUT", "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"];
        await ns.exec("iptables-nft", ["-w", "30", "-A", ...rule]);
        await waitFor('label "true"', running, () => label() === "true", DEADLINE_MS);
        const after = checks();
        await waitFor("3 more checks", running, () => checks() >= after + 3, DEADLINE_MS);
        assert.equal(label(), "true", "the label stays true while the rule is live");
        assert.deepEqual(events(RESOLVED), [], "no Resolved Event while the rule is live");
        assert.equal(events(UNEXPECTED).length, 1);
        assert.doesNotMatch(running.stderr(), /internal error|could not be read|truncated/);
        assert.match(
          running.stderr(),
          /unexpected rule in ipv4 filter .*: COMMIT \(part of a rule/,
        );

        await ns.exec("iptables-nft", ["-w", "30", "-D", ...rule]);
        await waitFor('label "false" again', running, () => label() === "false", DEADLINE_MS);
        await waitFor(
          "one Resolved Event",
          running,
          () => events(RESOLVED).length === 1,
          DEADLINE_MS,
        );
      } finally {
        await daemon?.kill();
        await api?.stop();
        await link?.remove();
      }
    }),
});
