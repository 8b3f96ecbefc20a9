/**
 * Reading iptables for real: rulesets loaded with iptables-restore into throw-away
 * network namespaces (nf_tables and legacy, IPv4 and IPv6), read with readFamily, and
 * compared with what `iptables -t TABLE -S` prints; plus the failure modes through real
 * processes (a missing command, a hanging one, an unprivileged one, ...).
 */
import assert from "node:assert/strict";
import {
  MAX_RULES_FILE_BYTES,
  readFamily,
  readRulesFile,
  RULESET_TOO_LARGE,
} from "../src/iptables/read.ts";
import { type CommandRunner, MAX_STDERR_BYTES, runCommand } from "../src/iptables/runner.ts";
import { type Family, type FamilyRead, type RulesSource, TABLES } from "../src/iptables/types.ts";
import { type Backend, type Netns, netnsRequires, withNetns } from "./_support/netns.ts";
import { requires } from "./_support/requires.ts";

const TIMEOUT_MS = 30_000;

/** A ruleset touching every table: user chains, policies, quoted comments, many matches. */
const RULESETS: Record<Family, string> = {
  ipv4: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.0.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-ABC
-A KUBE-SVC-ABC -p udp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.0.5:53
-A KUBE-SVC-ABC -p udp -j DNAT --to-destination 10.244.1.7:53
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CILIUM_PRE_mangle - [0:0]
-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_mangle" -j CILIUM_PRE_mangle
-A CILIUM_PRE_mangle -m socket --transparent -m mark ! --mark 0xa00/0xf00 -j MARK --set-xmark 0x200/0xf00
-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:USER-CHAIN - [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -i lo -j ACCEPT
-A INPUT -s 1.2.3.4/32 -m comment --comment "a \\"quoted\\" word and 'single' and two  spaces" -j DROP
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m multiport --dports 22,443 -j USER-CHAIN
-A FORWARD -d 168.63.129.16/32 -p tcp -m tcp --dport 80 -m comment --comment "AKS WireServer" -j DROP
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A USER-CHAIN -m comment --comment "back\\\\slash" -j RETURN
-A USER-CHAIN -m comment --comment simple -j ACCEPT
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack
-A OUTPUT -d 169.254.20.10/32 -j NOTRACK
COMMIT
*security
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 168.63.129.16/32 -p tcp -m owner --uid-owner 0 -j ACCEPT
-A OUTPUT -d 168.63.129.16/32 -p tcp -m conntrack --ctstate INVALID,NEW -j DROP
COMMIT
`,
  ipv6: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SVC - [0:0]
-A PREROUTING -m comment --comment "kube \\"svc\\" portal" -j KUBE-SVC
-A KUBE-SVC -d fd00::10/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00::5]:8080
-A POSTROUTING -s fd00::/8 ! -d fd00::/8 -j MASQUERADE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:USER6 - [0:0]
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT
-A INPUT -s 2001:db8::1/128 -m comment --comment "it's a 'test' with \\"quotes\\"" -j DROP
-A INPUT -j USER6
-A USER6 -s fe80::/10 -j ACCEPT
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack
COMMIT
*security
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 2001:db8::/32 -j ACCEPT
COMMIT
`,
};

/** A rule a user added through the legacy tools while everything else lives in nf_tables. */
const LEGACY_ONLY: Record<Family, { ruleset: string; rule: string }> = {
  ipv4: {
    ruleset: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
      "-A INPUT -s 203.0.113.7/32 -j DROP\nCOMMIT\n",
    rule: "-A INPUT -s 203.0.113.7/32 -j DROP",
  },
  ipv6: {
    ruleset: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
      "-A INPUT -s 2001:db8::7/128 -j DROP\nCOMMIT\n",
    rule: "-A INPUT -s 2001:db8::7/128 -j DROP",
  },
};

const FAMILIES: Family[] = ["ipv4", "ipv6"];
const BACKENDS: Backend[] = ["nft", "legacy"];

function tool(family: Family): string {
  return family === "ipv4" ? "iptables" : "ip6tables";
}

function sourceLabel(family: Family, backend: Backend): string {
  return backend === "nft"
    ? `${tool(family)}-nft-save (nf_tables)`
    : `${tool(family)}-legacy-save (legacy)`;
}

function onlySource(read: FamilyRead, label: string): RulesSource {
  assert.deepEqual(read.errors, []);
  assert.deepEqual(read.sources.map((source) => source.source), [label]);
  return read.sources[0];
}

/** The lines `iptables -t TABLE -S` prints inside the namespace, sorted. */
async function listed(ns: Netns, family: Family, backend: Backend, table: string) {
  const out = await ns.exec(`${tool(family)}-${backend}`, ["-t", table, "-S"]);
  return out.split("\n").filter((line) => line !== "").sort();
}

for (const family of FAMILIES) {
  for (const backend of BACKENDS) {
    Deno.test({
      name: `${family} ${backend}: each table's lines equal what '-t TABLE -S' prints`,
      ...netnsRequires({ backends: BACKENDS, families: [family] }),
      fn: () =>
        withNetns(async (ns) => {
          await ns.restore(family, backend, RULESETS[family]);
          const read = await readFamily(family, { timeoutMs: TIMEOUT_MS, run: ns.run });
          const source = onlySource(read, sourceLabel(family, backend));
          assert.equal(source.family, family);
          assert.deepEqual(source.tables.map((table) => table.table).sort(), [...TABLES].sort());
          for (const table of source.tables) {
            const ours = table.rules.map((rule) => rule.text).sort();
            assert.deepEqual(ours, await listed(ns, family, backend, table.table), table.table);
            for (const rule of table.rules) {
              assert.equal(rule.text.split(" ")[1], rule.chain, rule.text);
            }
          }
          // The quoted comment survived exactly as iptables prints it.
          const filter = source.tables.find((table) => table.table === "filter");
          assert.ok(filter?.rules.some((rule) => rule.text.includes("'")));
        }),
    });
  }

  Deno.test({
    name: `${family}: a rule only the legacy backend holds is its own source`,
    ...netnsRequires({ backends: BACKENDS, families: [family] }),
    fn: () =>
      withNetns(async (ns) => {
        await ns.restore(family, "nft", RULESETS[family]);
        await ns.restore(family, "legacy", LEGACY_ONLY[family].ruleset);
        const read = await readFamily(family, { timeoutMs: TIMEOUT_MS, run: ns.run });
        assert.deepEqual(read.errors, []);
        assert.deepEqual(
          read.sources.map((source) => source.source).sort(),
          [sourceLabel(family, "legacy"), sourceLabel(family, "nft")],
        );
        const nft = read.sources.find((source) => source.source === sourceLabel(family, "nft"));
        const legacy = read.sources.find((source) =>
          source.source === sourceLabel(family, "legacy")
        );
        assert.deepEqual(nft?.tables.map((table) => table.table).sort(), [...TABLES].sort());
        assert.deepEqual(legacy?.tables, [{
          table: "filter",
          rules: [
            { chain: "INPUT", text: "-P INPUT ACCEPT" },
            { chain: "FORWARD", text: "-P FORWARD ACCEPT" },
            { chain: "OUTPUT", text: "-P OUTPUT ACCEPT" },
            { chain: "INPUT", text: LEGACY_ONLY[family].rule },
          ],
        }]);
        const nftTexts = nft?.tables.flatMap((table) => table.rules.map((rule) => rule.text));
        assert.ok(!nftTexts?.includes(LEGACY_ONLY[family].rule));
      }),
  });

  Deno.test({
    name: `${family}: with nothing loaded, one source of the default backend with no tables`,
    ...netnsRequires({ backends: BACKENDS, families: [family] }),
    fn: () =>
      withNetns(async (ns) => {
        const read = await readFamily(family, { timeoutMs: TIMEOUT_MS, run: ns.run });
        const version = await ns.exec(`${tool(family)}-save`, ["--version"]);
        const backend: Backend = version.includes("(legacy)") ? "legacy" : "nft";
        assert.deepEqual(read, {
          family,
          sources: [{ family, source: sourceLabel(family, backend), tables: [] }],
          errors: [],
        });
      }),
  });

  Deno.test({
    name: `${family}: a saved dump file reads the same as the live backend`,
    ...netnsRequires({ backends: ["nft"], families: [family] }),
    fn: () =>
      withNetns(async (ns) => {
        await ns.restore(family, "nft", RULESETS[family]);
        const dump = await ns.exec(`${tool(family)}-nft-save`);
        const path = await Deno.makeTempFile({ prefix: "aim-dump-" });
        try {
          await Deno.writeTextFile(path, dump);
          const live = await readFamily(family, { timeoutMs: TIMEOUT_MS, run: ns.run });
          const fromFile = await readRulesFile(path, family);
          assert.deepEqual(fromFile.errors, []);
          assert.deepEqual(fromFile.sources, [{
            family,
            source: `file ${path}`,
            tables: onlySource(live, sourceLabel(family, "nft")).tables,
          }]);
        } finally {
          await Deno.remove(path);
        }
      }),
  });
}

Deno.test({
  name: "without the -nft/-legacy variants, plain iptables-save is read with its backend",
  ...netnsRequires({ backends: ["nft"], families: ["ipv4"] }),
  fn: () =>
    withNetns(async (ns) => {
      await ns.restore("ipv4", "nft", RULESETS.ipv4);
      const run: CommandRunner = (command, args, options) =>
        command === "iptables-save"
          ? ns.run("iptables-nft-save", args, options)
          : runCommand(`aim-no-such-command-${command}`, args, options);
      const read = await readFamily("ipv4", { timeoutMs: TIMEOUT_MS, run });
      const source = onlySource(read, "iptables-save (nf_tables)");
      assert.deepEqual(source.tables.map((table) => table.table).sort(), [...TABLES].sort());
    }),
});

// ---- failures, through real processes ----

/** Runs `command` instead of whatever readFamily asks for, keeping the arguments. */
function instead(command: string, prefixArgs: string[] = []): CommandRunner {
  return (_asked, args, options) => runCommand(command, [...prefixArgs, ...args], options);
}

function onlyErrors(read: FamilyRead): string[] {
  assert.deepEqual(read.sources, []);
  for (const error of read.errors) {
    assert.equal(error.kind, "iptables");
    assert.equal(error.family, read.family);
    assert.ok(!error.message.includes("\n"), `one line: ${error.message}`);
  }
  return read.errors.map((error) => error.message);
}

Deno.test("no iptables installed: falls back to iptables-save and says what to do", async () => {
  const calls: string[] = [];
  const run: CommandRunner = (command, args, options) => {
    calls.push([command, ...args].join(" "));
    return runCommand(`aim-no-such-command-${command}`, args, options);
  };
  for (const family of FAMILIES) {
    calls.length = 0;
    const read = await readFamily(family, { timeoutMs: TIMEOUT_MS, run });
    const save = `${tool(family)}-save`;
    const flag = family === "ipv4" ? "-rulesFile" : "-rulesFile6";
    assert.deepEqual(read.errors.map((error) => error.source), [save]);
    assert.deepEqual(onlyErrors(read), [
      `${save} is not installed (not found on PATH): install the iptables package, ` +
      `or audit a saved dump with ${flag}`,
    ]);
    assert.deepEqual(
      calls.sort(),
      [
        `${tool(family)}-legacy-save`,
        `${tool(family)}-nft-save`,
        save,
        `${save} --version`,
      ].sort(),
    );
  }
});

Deno.test("a save command that hangs is killed after the timeout: an error and a finding", async () => {
  const read = await readFamily("ipv4", { timeoutMs: 300, run: instead("sleep", ["600"]) });
  const messages = [
    "iptables-nft-save did not finish within 0.3s and was killed",
    "iptables-legacy-save did not finish within 0.3s and was killed",
  ];
  assert.deepEqual(read.errors.map((error) => error.message), messages);
  // A node user can make a save that slow by adding rules: it must make the verdict
  // "true", so it is also an unexpected line of its backend.
  assert.deepEqual(
    read.sources.map((source) => [source.source, source.tables]),
    [["iptables-nft-save (nf_tables)", 0], ["iptables-legacy-save (legacy)", 1]].map((
      [source, i],
    ) => [source, [{
      table: "",
      rules: [{ chain: "", text: messages[i as number], unallowable: RULESET_TOO_LARGE }],
    }]]),
  );
});

Deno.test("a save killed by SIGKILL (the OOM killer): an error and a finding", async () => {
  const read = await readFamily("ipv4", {
    timeoutMs: TIMEOUT_MS,
    run: instead("sh", ["-c", "echo '*filter'; kill -9 $$"]),
  });
  const messages = ["iptables-nft-save", "iptables-legacy-save"].map((command) =>
    `${command} was killed by SIGKILL (out of memory?) before it finished`
  );
  assert.deepEqual(read.errors.map((error) => error.message), messages);
  assert.deepEqual(
    read.sources.flatMap((source) => source.tables.flatMap((table) => table.rules)),
    messages.map((text) => ({ chain: "", text, unallowable: RULESET_TOO_LARGE })),
  );
});

Deno.test("a save whose output cannot be held: an error and a finding, never a crash", async () => {
  const run: CommandRunner = () => Promise.reject(new RangeError("Invalid string length"));
  const read = await readFamily("ipv4", { timeoutMs: TIMEOUT_MS, run });
  const messages = ["iptables-nft-save", "iptables-legacy-save"].map((command) =>
    `the output of ${command} could not be read (RangeError: Invalid string length)`
  );
  assert.deepEqual(read.errors.map((error) => error.message), messages);
  assert.deepEqual(
    read.sources.flatMap((source) => source.tables.flatMap((table) => table.rules)),
    messages.map((text) => ({ chain: "", text, unallowable: RULESET_TOO_LARGE })),
  );
});

Deno.test({
  name: "not root: both backends say to run as root or with CAP_NET_ADMIN",
  ...requires({ root: true, commands: ["setpriv", "iptables-nft-save", "iptables-legacy-save"] }),
  async fn() {
    const unprivileged: CommandRunner = (command, args, options) =>
      runCommand("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        command,
        ...args,
      ], options);
    for (const family of FAMILIES) {
      const messages = onlyErrors(
        await readFamily(family, { timeoutMs: TIMEOUT_MS, run: unprivileged }),
      );
      assert.equal(messages.length, 2, messages.join("\n"));
      assert.ok(messages[0].startsWith(`${tool(family)}-nft-save is not permitted`), messages[0]);
      assert.ok(
        messages[1].startsWith(`${tool(family)}-legacy-save is not permitted`),
        messages[1],
      );
      for (const message of messages) {
        assert.ok(message.endsWith("run as root or with CAP_NET_ADMIN"), message);
        assert.ok(/permission denied/i.test(message), message);
      }
    }
  },
});

Deno.test("a failing save command: the exit code and the first stderr line", async () => {
  const run = instead("sh", [
    "-c",
    "echo; echo 'iptables: resource busy' >&2; echo more >&2; exit 3",
  ]);
  assert.deepEqual(onlyErrors(await readFamily("ipv6", { timeoutMs: TIMEOUT_MS, run })), [
    "ip6tables-nft-save exited with code 3: iptables: resource busy",
    "ip6tables-legacy-save exited with code 3: iptables: resource busy",
  ]);
});

Deno.test("output lines with no place in a dump are unexpected rules, never an error", async () => {
  const run = instead("printf", ['# hi\n{"rules": []}\n']);
  const read = await readFamily("ipv4", { timeoutMs: TIMEOUT_MS, run });
  assert.deepEqual(read.errors, []);
  assert.deepEqual(read.sources.map((source) => source.source), [
    "iptables-nft-save (nf_tables)",
    "iptables-legacy-save (legacy)",
  ]);
  for (const source of read.sources) {
    assert.deepEqual(source.tables, [{
      table: "",
      rules: [{ chain: "", text: '{"rules": []}', unallowable: "a line outside any table" }],
    }]);
  }
});

Deno.test("a save whose output stops inside a table: its rules are kept, and an error", async () => {
  const run = instead("printf", ["*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n"]);
  const read = await readFamily("ipv4", { timeoutMs: TIMEOUT_MS, run });
  assert.deepEqual(read.errors.map((error) => error.message), [
    'iptables-nft-save output, line 3: table "filter" (line 1) has no COMMIT at the end; the dump looks truncated',
    'iptables-legacy-save output, line 3: table "filter" (line 1) has no COMMIT at the end; the dump looks truncated',
  ]);
  assert.equal(read.sources.length, 2);
  for (const source of read.sources) assert.equal(source.tables[0].rules.length, 2);
});

Deno.test("a save command that cannot be executed", async () => {
  const path = await Deno.makeTempFile({ prefix: "aim-not-executable-" });
  try {
    await Deno.chmod(path, 0o644);
    const messages = onlyErrors(
      await readFamily("ipv4", { timeoutMs: TIMEOUT_MS, run: instead(path) }),
    );
    assert.equal(messages.length, 2);
    for (const message of messages) {
      assert.match(message, /is on PATH but could not be run: .* execve failed with EACCES/);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test({
  name: "a kernel without nf_tables is no error while legacy can be read",
  ...netnsRequires({ backends: ["legacy"], families: ["ipv4"] }),
  fn: () =>
    withNetns(async (ns) => {
      await ns.restore("ipv4", "legacy", LEGACY_ONLY.ipv4.ruleset);
      const run: CommandRunner = (command, args, options) =>
        command === "iptables-nft-save"
          ? runCommand("sh", [
            "-c",
            "echo 'iptables-nft-save v1.8.9 (nf_tables): Failed to initialize nft: " +
            "Protocol not supported' >&2; exit 1",
          ], options)
          : ns.run(command, args, options);
      const read = await readFamily("ipv4", { timeoutMs: TIMEOUT_MS, run });
      const legacy = onlySource(read, "iptables-legacy-save (legacy)");
      assert.ok(legacy.tables[0].rules.some((rule) => rule.text === LEGACY_ONLY.ipv4.rule));
    }),
});

// ---- the runner itself ----

Deno.test("runCommand: 20 MB on stdout and 5 MB on stderr at once do not deadlock", async () => {
  const outcome = await runCommand("sh", [
    "-c",
    "yes 'rule -A INPUT -j ACCEPT' | head -c 20000000 & yes e | head -c 5000000 >&2; wait",
  ], { timeoutMs: 120_000 });
  assert.equal(outcome.kind, "exited");
  if (outcome.kind !== "exited") return;
  assert.equal(outcome.code, 0);
  assert.equal(outcome.stdout.length, 20_000_000);
  assert.equal(outcome.stderr.length, MAX_STDERR_BYTES, "stderr is read to the end, kept in part");
});

Deno.test("runCommand: invalid UTF-8 is replaced, not fatal; arguments reach no shell", async () => {
  const outcome = await runCommand("printf", ["a\\377b $HOME;x"], { timeoutMs: TIMEOUT_MS });
  assert.deepEqual(outcome, {
    kind: "exited",
    code: 0,
    signal: null,
    stdout: "a\ufffdb $HOME;x",
    stderr: "",
  });
});

Deno.test("runCommand: not found, timeout, cannot start", async () => {
  assert.deepEqual(await runCommand("aim-no-such-command", [], { timeoutMs: TIMEOUT_MS }), {
    kind: "not-found",
  });
  assert.deepEqual(await runCommand("sleep", ["600"], { timeoutMs: 200 }), { kind: "timeout" });
  const script = await Deno.makeTempFile({ prefix: "aim-no-interpreter-" });
  try {
    await Deno.writeTextFile(script, "#!/nonexistent/interpreter\n");
    await Deno.chmod(script, 0o755);
    const outcome = await runCommand(script, [], { timeoutMs: TIMEOUT_MS });
    assert.deepEqual(outcome, {
      kind: "cannot-start",
      message: `${script} exists but execve failed with ENOENT: its interpreter or dynamic ` +
        "loader is missing",
    });
  } finally {
    await Deno.remove(script);
  }
});

/** Whether process `pid` still exists (a zombie waiting for its parent counts as gone). */
function alive(pid: number): boolean {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (alive(pid)) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

Deno.test("runCommand: a timeout kills the whole group, a grandchild holding the pipes too", async () => {
  const pidFile = await Deno.makeTempFile({ prefix: "aim-grandchild-" });
  try {
    const outcome = await runCommand(
      "sh",
      ["-c", 'sleep 120 & echo $! > "$0"; exec sleep 120', pidFile],
      { timeoutMs: 300 },
    );
    assert.deepEqual(outcome, { kind: "timeout" });
    const grandchild = Number((await Deno.readTextFile(pidFile)).trim());
    assert.ok(grandchild > 0);
    assert.ok(await waitGone(grandchild, 2_000), `grandchild ${grandchild} was left running`);
  } finally {
    await Deno.remove(pidFile);
  }
});

Deno.test("runCommand: what a command leaves behind in its group ends when it exits", async () => {
  const pidFile = await Deno.makeTempFile({ prefix: "aim-leftover-" });
  try {
    const outcome = await runCommand(
      "sh",
      ["-c", 'sleep 120 >/dev/null 2>&1 & echo $! > "$0"; echo done', pidFile],
      { timeoutMs: 10_000 },
    );
    assert.equal(outcome.kind, "exited");
    const leftover = Number((await Deno.readTextFile(pidFile)).trim());
    assert.ok(await waitGone(leftover, 2_000), `background child ${leftover} was left running`);
  } finally {
    await Deno.remove(pidFile);
  }
});

Deno.test("runCommand: endless output stops at the limit + one read, the command killed", async () => {
  const started = performance.now();
  const outcome = await runCommand("sh", ["-c", "exec yes 'a rule'"], {
    timeoutMs: 30_000,
    maxOutputBytes: 1024 * 1024,
  });
  assert.deepEqual(outcome, { kind: "too-large", limitBytes: 1024 * 1024 });
  assert.ok(performance.now() - started < 10_000);
});

Deno.test("runCommand: an abort kills the command at once", async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const started = performance.now();
  const outcome = await runCommand("sleep", ["600"], {
    timeoutMs: 60_000,
    signal: controller.signal,
  });
  assert.deepEqual(outcome, { kind: "aborted" });
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("runCommand: death by a signal is reported as such", async () => {
  const outcome = await runCommand("sh", ["-c", "echo partial; kill -SEGV $$"], {
    timeoutMs: 10_000,
  });
  assert.equal(outcome.kind, "exited");
  if (outcome.kind !== "exited") return;
  assert.equal(outcome.signal, "SIGSEGV");
});

Deno.test("runCommand: a UTF-8 sequence split between reads decodes as one piece", async () => {
  // 65535 ASCII bytes, then "é" (2 bytes) straddling the 64 KiB read boundary.
  const outcome = await runCommand(
    "sh",
    ["-c", "head -c 65535 /dev/zero | tr '\\0' a; printf '\\303\\251z'"],
    { timeoutMs: 10_000 },
  );
  assert.equal(outcome.kind, "exited");
  if (outcome.kind !== "exited") return;
  assert.equal(outcome.stdout.length, 65537);
  assert.ok(outcome.stdout.endsWith("aéz"), JSON.stringify(outcome.stdout.slice(-5)));
});

// ---- rules files ----

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aim-rules-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function fileError(read: FamilyRead, path: string): string {
  assert.deepEqual(read.sources, []);
  assert.equal(read.errors.length, 1);
  const [error] = read.errors;
  assert.equal(error.kind, "rules-file");
  assert.equal(error.source, `file ${path}`);
  assert.ok(!error.message.includes("\n"), error.message);
  return error.message;
}

Deno.test("readRulesFile: a dump gives one source named after the file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/dump`;
    await Deno.writeTextFile(path, RULESETS.ipv4.replaceAll("\n", "\r\n"));
    const read = await readRulesFile(path, "ipv4");
    assert.deepEqual(read.errors, []);
    assert.equal(read.sources.length, 1);
    assert.equal(read.sources[0].source, `file ${path}`);
    assert.deepEqual(read.sources[0].tables.map((table) => table.table), [
      "nat",
      "mangle",
      "filter",
      "raw",
      "security",
    ]);
  });
});

Deno.test("readRulesFile: a truncated dump keeps its rules and is one clear error", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/truncated`;
    await Deno.writeTextFile(path, RULESETS.ipv4.slice(0, RULESETS.ipv4.lastIndexOf("COMMIT")));
    const read = await readRulesFile(path, "ipv4");
    assert.equal(read.errors.length, 1);
    assert.equal(read.errors[0].kind, "rules-file");
    assert.match(read.errors[0].message, /^rules file .*truncated, line \d+: .*looks truncated$/);
    assert.equal(read.sources[0].tables.length, 5);
  });
});

Deno.test("readRulesFile: each unusable file is one clear error", async (t) => {
  await withTempDir(async (dir) => {
    const cases: { name: string; content?: Uint8Array | string; expect: string }[] = [
      { name: "missing", expect: "does not exist" },
      {
        name: "binary",
        content: new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]),
        expect: "binary",
      },
      { name: "json", content: '{"a": 1}\n', expect: "is not an iptables-save dump" },
      { name: "empty", content: "", expect: "holds no tables" },
      {
        name: "ipv6 dump for ipv4",
        content: "# Generated by ip6tables-save v1.8.9 on now\n*filter\nCOMMIT\n",
        expect: "was written by ip6tables-save; pass it with -rulesFile6",
      },
    ];
    for (const testCase of cases) {
      await t.step(testCase.name, async () => {
        const path = `${dir}/${testCase.name}`;
        if (typeof testCase.content === "string") await Deno.writeTextFile(path, testCase.content);
        else if (testCase.content !== undefined) await Deno.writeFile(path, testCase.content);
        const message = fileError(await readRulesFile(path, "ipv4"), path);
        assert.ok(message.includes(testCase.expect), message);
        assert.ok(message.includes(path), message);
      });
    }
    await t.step("a directory", async () => {
      const message = fileError(await readRulesFile(dir, "ipv4"), dir);
      assert.ok(message.includes("is a directory"), message);
    });
    await t.step("over 32 MiB (sparse)", async () => {
      const path = `${dir}/huge`;
      await Deno.writeTextFile(path, "*filter\n");
      await Deno.truncate(path, MAX_RULES_FILE_BYTES + 1);
      const message = fileError(await readRulesFile(path, "ipv4"), path);
      assert.ok(message.includes("larger than 32 MiB"), message);
    });
  });
});

Deno.test({
  name: "readRulesFile: a named FIFO is refused at once, without waiting for a writer",
  ...requires({ commands: ["mkfifo"] }),
  async fn() {
    await withTempDir(async (dir) => {
      const fifo = `${dir}/fifo`;
      const made = await runCommand("mkfifo", [fifo], { timeoutMs: TIMEOUT_MS });
      assert.equal(made.kind, "exited");
      const started = performance.now();
      const message = fileError(await readRulesFile(fifo, "ipv6"), fifo);
      assert.ok(performance.now() - started < 1_000, "no wait for a writer");
      assert.equal(
        message,
        `rules file ${fifo} is a named pipe (FIFO), not a regular file, so it was not read`,
      );
    });
  },
});
