/**
 * Whether a node user can make a save run past its deadline (`SAVE_TIMEOUT_MS`) by adding
 * rules: N rules in one chain are loaded with `iptables-nft-restore` into a throw-away
 * namespace, then `iptables-nft-save` (and the legacy pair) is timed. The answer decides
 * whether a timed-out save may make a check "unknown" (README, "What can make a check
 * unknown"); it is not part of `deno task bench` because a single run takes minutes.
 *
 *     deno run -A bench/save_deadline.ts [N,N,...]     (default 100000,300000)
 *
 * @module
 */
import { SAVE_TIMEOUT_MS } from "../src/scan.ts";
import { withNetns } from "../tests/_support/netns.ts";
import { describeMachine } from "./machine.ts";
import { timeProcess } from "./measure.ts";

/** A dump with `rules` kube-proxy-like rules in one user chain. */
function ruleset(rules: number): string {
  const lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
  lines.push(":USER - [0:0]");
  for (let i = 0; i < rules; i++) {
    lines.push(
      `-A USER -d 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32 -p tcp -m tcp ` +
        `--dport ${(i % 60000) + 1} -m comment --comment "ns/svc-${i} has no endpoints" ` +
        `-j REJECT --reject-with icmp-port-unreachable`,
    );
  }
  lines.push("COMMIT", "");
  return lines.join("\n");
}

const counts = (Deno.args[0] ?? "100000,300000").split(",").map(Number);
const machine = await describeMachine();
console.log(`machine: ${JSON.stringify(machine)}`);
console.log(`deadline of one save: ${SAVE_TIMEOUT_MS / 1000} s`);
console.log("| backend | rules in one chain | restore | save | save / deadline |");
console.log("| ------- | ------------------ | ------- | ---- | --------------- |");
for (const backend of ["nft", "legacy"] as const) {
  for (const rules of counts) {
    const file = await Deno.makeTempFile({ prefix: "aim-deadline-" });
    try {
      await Deno.writeTextFile(file, ruleset(rules));
      await withNetns(async (ns) => {
        const timeoutMs = 30 * 60_000;
        const argv = (command: string, args: string[] = []) => {
          const wrapped = ns.wrap(command, args);
          return [wrapped.command, ...wrapped.args];
        };
        const restore = await timeProcess(argv(`iptables-${backend}-restore`, [file]), {
          timeoutMs,
        });
        if (restore.code !== 0) throw new Error(`restore failed: ${restore.stderr}`);
        const save = await timeProcess(argv(`iptables-${backend}-save`), { timeoutMs });
        if (save.code !== 0) throw new Error(`save failed: ${save.stderr}`);
        const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
        console.log(
          `| ${backend} | ${rules} | ${s(restore.wallMs)} | ${s(save.wallMs)} | ${
            (save.wallMs / SAVE_TIMEOUT_MS).toFixed(2)
          } |`,
        );
      });
    } finally {
      await Deno.remove(file);
    }
  }
}
