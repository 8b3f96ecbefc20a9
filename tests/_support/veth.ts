/**
 * A veth pair between this process's network namespace and a test namespace, so that
 * a program inside the namespace reaches a server of the test (the API fixture): the
 * namespace's own loopback is not ours. Each pair gets a random link-local /30; the
 * namespace routes everything through our end, so one server on one pair's address
 * serves several namespaces.
 */
import { runCommand } from "../../src/iptables/runner.ts";
import type { Netns } from "./netns.ts";

/** One live pair; {@linkcode remove} deletes it (deleting the namespace does too). */
export interface VethLink {
  /** Our end's address, e.g. `169.254.187.9`: what a server in this process listens on. */
  readonly hostAddress: string;
  /** The namespace end's address. */
  readonly nsAddress: string;
  /** Our end's interface name, e.g. `aimh1a2b3c`. */
  readonly hostInterface: string;
  remove(): Promise<void>;
}

async function ip(args: string[]): Promise<void> {
  const outcome = await runCommand("ip", args, { timeoutMs: 30_000 });
  if (outcome.kind === "exited" && outcome.code === 0) return;
  const detail = outcome.kind === "exited" ? outcome.stderr.trim() : outcome.kind;
  throw new Error(`ip ${args.join(" ")} failed: ${detail}`);
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}

/** A random /30 in 169.254.100.0-169.254.249.255, away from 169.254.169.254 (IMDS). */
function randomSubnet(): { host: string; peer: string } {
  const [a, b] = crypto.getRandomValues(new Uint8Array(2));
  const third = 100 + (a % 150 === 69 ? 70 : a % 150);
  const fourth = (b % 63) * 4;
  return { host: `169.254.${third}.${fourth + 1}`, peer: `169.254.${third}.${fourth + 2}` };
}

/**
 * Connects `ns` to this namespace: our end up with the first address of a fresh /30,
 * the peer inside `ns` with the second and a default route through ours. On failure
 * whatever was created is removed before the error is thrown.
 */
export async function linkNetns(ns: Netns): Promise<VethLink> {
  const id = randomHex(3);
  const hostInterface = `aimh${id}`;
  const peerInterface = `aimn${id}`;
  const { host, peer } = randomSubnet();
  await ip([
    "link",
    "add",
    hostInterface,
    "type",
    "veth",
    "peer",
    "name",
    peerInterface,
    "netns",
    ns.name,
  ]);
  const remove = async () => {
    // Gone already when the namespace was deleted first.
    await runCommand("ip", ["link", "delete", hostInterface], { timeoutMs: 30_000 });
  };
  try {
    await ip(["addr", "add", `${host}/30`, "dev", hostInterface]);
    await ip(["link", "set", hostInterface, "up"]);
    await ip(["-n", ns.name, "addr", "add", `${peer}/30`, "dev", peerInterface]);
    await ip(["-n", ns.name, "link", "set", peerInterface, "up"]);
    await ip(["-n", ns.name, "route", "add", "default", "via", host]);
  } catch (error) {
    await remove();
    throw error;
  }
  return { hostAddress: host, nsAddress: peer, hostInterface, remove };
}
