import assert from "node:assert/strict";
import {
  type CommandLine,
  type Config,
  FLAGS,
  parseCommandLine,
  PROGRAM_NAME,
  usageText,
  VERSION,
} from "../src/cli/config.ts";
import { ConfigSchema } from "../src/cli/config_schema.ts";
import { prng } from "./_support/prng.ts";

const NODE = { NODE_NAME: "aks-nodepool1-0" };

const DEFAULTS: Config = {
  input: "/etc/config/",
  input6: "/etc/config6/",
  interval: 300,
  events: false,
  ipv6: false,
  checkMap: false,
  mapPath: "/block-iptables/iptables_block_event_counter",
  verbosity: 0,
  once: false,
  dryRun: false,
  rulesFile: undefined,
  rulesFile6: undefined,
  output: "text",
  kubeconfig: undefined,
  nodeName: "aks-nodepool1-0",
  terminateOnSuccess: false,
  installRoutesForHealthProbeReply: false,
  metricsAddress: undefined,
  watch: false,
  nftables: true,
  skipHeaders: false,
  addDirHeader: false,
};

function config(args: string[], env: Record<string, string | undefined> = NODE): Config {
  const result = parseCommandLine(args, env);
  assert.equal(result.kind, "run", result.kind === "exit" ? result.stderr : "");
  if (result.kind !== "run") throw new Error("unreachable");
  return result.config;
}

/** The first line of stderr for a command line that must fail with exit code 2. */
function failure(args: string[], env: Record<string, string | undefined> = NODE): string {
  const result: CommandLine = parseCommandLine(args, env);
  assert.equal(result.kind, "exit");
  if (result.kind !== "exit") throw new Error("unreachable");
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  const [first, ...others] = result.stderr.split("\n");
  assert.equal(others.join("\n"), usageText(), "the usage follows the error line");
  return first;
}

Deno.test("no flags: the seed's defaults, NODE_NAME from the environment", () => {
  assert.deepEqual(config([]), DEFAULTS);
});

Deno.test("the Go original's command lines still work", () => {
  assert.deepEqual(config(["-input=/etc/config/", "-interval=300"]), DEFAULTS);
  assert.deepEqual(config(["--input", "/cfg", "-interval", "60", "-v", "3", "-events"]), {
    ...DEFAULTS,
    input: "/cfg",
    interval: 60,
    verbosity: 3,
    events: true,
  });
  assert.deepEqual(
    config(["-ipv6", "-input6=/c6", "-checkMap", "-mapPath=/m", "-terminateOnSuccess=true"]),
    {
      ...DEFAULTS,
      ipv6: true,
      input6: "/c6",
      checkMap: true,
      mapPath: "/m",
      terminateOnSuccess: true,
    },
  );
  assert.equal(
    config(["-installRoutesForHealthProbeReply"]).installRoutesForHealthProbeReply,
    true,
  );
});

Deno.test("klog's common flags are accepted", () => {
  const args = [
    "-logtostderr=false",
    "-alsologtostderr",
    "-stderrthreshold=INFO",
    "-log_dir=/var/log",
    "-log_file=/var/log/x.log",
    "-log_file_max_size=10",
    "-vmodule=scan=4",
    "-add_dir_header",
    "-skip_headers",
    "-skip_log_headers",
    "-one_output",
    "-log_backtrace_at=scan.go:10",
    "-v=2",
  ];
  assert.deepEqual(config(args), {
    ...DEFAULTS,
    skipHeaders: true,
    addDirHeader: true,
    verbosity: 2,
  });
});

Deno.test("the new flags", () => {
  assert.deepEqual(
    config([
      "-once",
      "-dryRun",
      "-rulesFile=/d4",
      "-rulesFile6",
      "/d6",
      "-ipv6",
      "-output=json",
      "-kubeconfig=/k",
      "-metricsAddress=:9090",
      "-watch",
      "-nftables=false",
    ], {}),
    {
      ...DEFAULTS,
      once: true,
      dryRun: true,
      rulesFile: "/d4",
      rulesFile6: "/d6",
      ipv6: true,
      output: "json",
      kubeconfig: "/k",
      nodeName: undefined,
      metricsAddress: ":9090",
      watch: true,
      nftables: false,
    },
  );
  assert.equal(config(["-metricsAddress=[::1]:0"]).metricsAddress, "[::1]:0");
  assert.equal(config(["-rulesFile="]).rulesFile, undefined, "an empty path means none");
});

Deno.test("kubeconfig: the flag, else KUBECONFIG, empty means unset", () => {
  assert.equal(config([], { ...NODE, KUBECONFIG: "/env" }).kubeconfig, "/env");
  assert.equal(config(["-kubeconfig=/flag"], { ...NODE, KUBECONFIG: "/env" }).kubeconfig, "/flag");
  assert.equal(config([], { ...NODE, KUBECONFIG: "" }).kubeconfig, undefined);
});

Deno.test("NODE_NAME is required unless -dryRun", () => {
  const message = failure([], {});
  assert.match(message, /^NODE_NAME is not set: .*-dryRun/);
  assert.equal(failure([], { NODE_NAME: "" }), message);
  assert.equal(config(["-dryRun"], {}).nodeName, undefined);
  assert.equal(config(["-dryRun"], { NODE_NAME: "n" }).nodeName, "n");
});

Deno.test("help: the usage on stderr, exit 0, as Go's flag package prints it", () => {
  for (const flag of ["-h", "-help", "--help", "--h", "-h=1"]) {
    assert.deepEqual(parseCommandLine([flag], {}), {
      kind: "exit",
      code: 0,
      stdout: "",
      stderr: usageText(),
    });
  }
  const usage = usageText();
  assert.ok(usage.startsWith(`Usage of ${PROGRAM_NAME}:\n  -add_dir_header\n`));
  assert.ok(usage.includes(
    "\n  -interval seconds\n    \tHow often to check for user iptables rules and BPF map " +
      "increases, in seconds (default 300)\n",
  ));
  assert.ok(usage.includes(
    "\n  -mapPath path\n    \tCount blocked iptables writes (with -checkMap) in the pinned BPF " +
      'map at this path (default "/block-iptables/iptables_block_event_counter")\n',
  ));
  assert.ok(usage.includes("\n  -once\n    \tCheck once,"));
  for (const { name } of FLAGS) assert.ok(usage.includes(`\n  -${name}`), name);
});

Deno.test("-version prints the version on stdout and wins over semantic errors", () => {
  const expected = { kind: "exit", code: 0, stdout: `${PROGRAM_NAME} ${VERSION}\n`, stderr: "" };
  assert.deepEqual(parseCommandLine(["-version"], {}), expected);
  assert.deepEqual(parseCommandLine(["-interval=0", "-version", "-output=xml"], {}), expected);
});

Deno.test("VERSION matches deno.json", async () => {
  const denoJson = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  assert.equal(VERSION, denoJson.version);
});

Deno.test("flag syntax errors: Go's message, then the usage, exit 2", () => {
  assert.equal(failure(["-foo"]), "flag provided but not defined: -foo");
  assert.equal(failure(["-input"]), "flag needs an argument: -input");
  assert.equal(failure(["---x"]), "bad flag syntax: ---x");
  assert.equal(failure(["-interval=abc"]), 'invalid value "abc" for flag -interval: parse error');
  assert.equal(
    failure(["-interval=99999999999999999999"]),
    'invalid value "99999999999999999999" for flag -interval: value out of range',
  );
  assert.equal(failure(["-events=x"]), 'invalid boolean value "x" for -events: parse error');
});

Deno.test("semantic errors: one clear line, then the usage, exit 2", () => {
  assert.equal(
    failure(["-interval=0"]),
    "invalid value for -interval: 0 (must be a whole number of seconds, at least 1)",
  );
  assert.equal(
    failure(["-interval=-5"]),
    "invalid value for -interval: -5 (must be a whole number of seconds, at least 1)",
  );
  assert.match(failure(["-interval=2147484"]), /^invalid value for -interval: 2147484 .*at most/);
  assert.equal(config(["-interval=2147483"]).interval, 2147483);
  assert.equal(
    failure(["-output=xml"]),
    'invalid value for -output: "xml" (must be text or json)',
  );
  assert.match(failure(["-rulesFile6=/d6"]), /^-rulesFile6 needs -ipv6: add -ipv6 /);
  assert.equal(
    failure(["-once", "extra"]),
    'unexpected argument "extra": flags must come before arguments',
  );
  assert.equal(
    failure(["-once", "--", "-dryRun"]),
    'unexpected argument "-dryRun": flags must come before arguments',
  );
  assert.match(failure(["-v=2147483648"]), /^invalid value for -v: 2147483648 /);
  assert.match(failure(["-metricsAddress=9090"]), /^invalid value for -metricsAddress: "9090" /);
  assert.match(failure(["-metricsAddress=:70000"]), /^invalid value for -metricsAddress/);
});

Deno.test("Go's syntax details carry through: -flag value, last wins, bool needs =", () => {
  assert.equal(config(["-interval", "0x3c"]).interval, 60);
  assert.equal(config(["-interval=5", "-interval=7"]).interval, 7);
  assert.equal(config(["-output", "json", "-output", "text"]).output, "text");
  // `-once false` is `-once` followed by the argument "false".
  assert.equal(
    failure(["-once", "false"]),
    'unexpected argument "false": flags must come before arguments',
  );
  assert.equal(config(["-once=false"]).once, false);
});

Deno.test("every Config produced satisfies the schema; the schema rejects bad ones", () => {
  assert.ok(ConfigSchema.safeParse(config([])).success);
  assert.ok(ConfigSchema.safeParse(config(["-dryRun", "-once"], {})).success);
  assert.equal(ConfigSchema.safeParse({ ...DEFAULTS, interval: 0 }).success, false);
  assert.equal(ConfigSchema.safeParse({ ...DEFAULTS, interval: 1.5 }).success, false);
  assert.equal(ConfigSchema.safeParse({ ...DEFAULTS, output: "xml" }).success, false);
  assert.equal(ConfigSchema.safeParse({ ...DEFAULTS, rulesFile6: "/x" }).success, false);
  assert.equal(ConfigSchema.safeParse({ ...DEFAULTS, nodeName: undefined }).success, false);
  assert.equal(ConfigSchema.safeParse({ ...DEFAULTS, surprise: 1 }).success, false);
});

Deno.test("every Config the command line builds, of any flags, meets the schema", () => {
  const next = prng(20261202);
  const values: Record<string, string[]> = {
    interval: ["1", "300", "2147483", "0", "-1", "1.5", "x", "2147484"],
    v: ["0", "3", "-1", "2147483647", "2147483648", "x"],
    output: ["text", "json", "xml", ""],
    metricsAddress: [":9815", "[::1]:9815", "10.0.0.1:65535", "10.0.0.1:65536", "x", ""],
    rulesFile: ["/tmp/r", ""],
    rulesFile6: ["/tmp/r6", ""],
    kubeconfig: ["/k", ""],
    input: ["/etc/config/", ""],
  };
  const booleans = ["once", "dryRun", "ipv6", "events", "checkMap", "watch", "nftables"];
  let built = 0;
  for (let i = 0; i < 2000; i++) {
    const args: string[] = [];
    for (const [flag, choices] of Object.entries(values)) {
      if (next() < 0.3) args.push(`-${flag}=${choices[Math.floor(next() * choices.length)]}`);
    }
    for (const flag of booleans) if (next() < 0.3) args.push(`-${flag}=${next() < 0.5}`);
    const env = next() < 0.5 ? NODE : next() < 0.5 ? { NODE_NAME: "" } : {};
    const result = parseCommandLine(args, env);
    if (result.kind !== "run") continue;
    built++;
    const checked = ConfigSchema.safeParse(result.config);
    assert.ok(checked.success, `${args.join(" ")}: ${JSON.stringify(checked.error?.issues)}`);
  }
  assert.ok(built > 200, `${built} of the command lines were valid`);
});

Deno.test("NODE_NAME must be a Kubernetes object name (a DNS-1123 subdomain, at most 253)", () => {
  const longest = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
  assert.equal(longest.length, 253);
  assert.equal(config([], { NODE_NAME: longest }).nodeName, longest);
  assert.equal(
    config([], { NODE_NAME: "aks-nodepool1-12345678-vmss000000" }).nodeName !== "",
    true,
  );
  const cases: [string, RegExp][] = [
    ["..", /^NODE_NAME="\.\." is not a valid node name: .*DNS-1123 subdomain/],
    ["node\nforged", /^NODE_NAME="node\\nforged" is not a valid node name: /],
    [
      "a".repeat(254),
      /^NODE_NAME="a{254}" is not a valid node name: it has 254 characters, at most 253/,
    ],
    ["Node-1", /is not a valid node name/],
    ["a/b", /is not a valid node name/],
    ["-a", /is not a valid node name/],
  ];
  for (const [name, expected] of cases) {
    assert.match(failure([], { NODE_NAME: name }), expected);
    assert.match(failure(["-dryRun"], { NODE_NAME: name }), expected, "also with -dryRun");
  }
});
