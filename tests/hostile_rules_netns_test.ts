/**
 * Rule text written to blind the check, put in with real iptables (nf_tables and legacy,
 * IPv4 and IPv6) in throw-away namespaces, then the whole program run there
 * (`-once -dryRun`): a comment with a raw newline and a comment carrying dump syntax must
 * give exit 1, name every line of the offending rule (as the Go original would see them)
 * in the text and JSON reports, and still see the rules after it.
 */
import assert from "node:assert/strict";
import type { Family } from "../src/iptables/types.ts";
import { Unallowable } from "../src/iptables/save_parser.ts";
import { type Backend, type Netns, netnsRequires, withNetns } from "./_support/netns.ts";
import { type Report, ReportSchema } from "./_support/report_schema.ts";
import { monitorArgs } from "./_support/cli.ts";
import { runCommand } from "../src/iptables/runner.ts";

const FAMILIES: Family[] = ["ipv4", "ipv6"];
const BACKENDS: Backend[] = ["nft", "legacy"];

function tool(family: Family, backend: Backend): string {
  return `${family === "ipv4" ? "iptables" : "ip6tables"}-${backend}`;
}

function sourceOf(family: Family, backend: Backend): string {
  return `${tool(family, backend)}-save (${backend === "nft" ? "nf_tables" : "legacy"})`;
}

const LOOPBACK = "-A INPUT -i lo -j ACCEPT";
const USER_RULE: Record<Family, string> = {
  ipv4: "-A INPUT -s 6.6.6.6/32 -j DROP",
  ipv6: "-A INPUT -s 2001:db8::6/128 -j DROP",
};

/**
 * The allowlist of every test: the clean node (policies, loopback) and, on purpose,
 * patterns that accept each physical line of the hostile rules below on its own, as a
 * careless allowlist could: the Go original would then call the node clean.
 */
const ALLOWLIST = [
  "^-P [A-Z]+ ACCEPT$",
  "^-A INPUT -i lo -j ACCEPT$",
  '^-A INPUT -m comment --comment "',
  '" -j ACCEPT$',
  "^[^-].*$",
  "",
].join("\n");

/** Comments a node user writes to split a rule or forge dump structure. */
const HOSTILE_COMMENTS: { name: string; comment: string }[] = [
  { name: "a comment with a newline", comment: "x\ny" },
  {
    name: "a comment carrying dump syntax",
    comment: "\nCOMMIT\n*raw\n:FOO - [0:0]\n-A FOO -j DROP\n# done\n\n*nat",
  },
  { name: "a comment with quotes, backslashes and CR", comment: 'a"\\\n\\"b\r\nCOMMIT' },
];

/** The physical lines iptables prints for a comment rule: what Go's `-S` split sees. */
function physicalLines(comment: string): string[] {
  const quoted = comment.replace(/["\\']/g, (c) => `\\${c}`);
  return `-A INPUT -m comment --comment "${quoted}" -j ACCEPT`.split("\n");
}

async function loadClean(ns: Netns, family: Family, backend: Backend): Promise<void> {
  await ns.restore(
    family,
    backend,
    `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${LOOPBACK}\nCOMMIT\n`,
  );
}

/** Each run of the program is bounded: it is killed if it takes longer. */
const RUN_TIMEOUT_MS = 180_000;

async function monitor(
  ns: Netns,
  output: "json" | "text",
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "aim-hostile-" });
  try {
    await Deno.writeTextFile(`${dir}/filter`, ALLOWLIST);
    const flags = ["-once", "-dryRun", "-ipv6", `-input=${dir}`, `-input6=${dir}`];
    const outcome = await ns.run(
      Deno.execPath(),
      [...monitorArgs(), ...flags, "-output", output],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    if (outcome.kind !== "exited") {
      assert.fail(`monitor did not finish: ${JSON.stringify(outcome)}`);
    }
    // Nothing the check started outlives it.
    assert.equal(await runCommandText("ip", ["netns", "pids", ns.name]), "");
    return outcome;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function runCommandText(command: string, args: string[]): Promise<string> {
  const outcome = await runCommand(command, args, { timeoutMs: 30_000 });
  if (outcome.kind !== "exited" || outcome.code !== 0) {
    assert.fail(`${command} ${args.join(" ")}: ${JSON.stringify(outcome)}`);
  }
  return outcome.stdout.trim();
}

async function jsonReport(ns: Netns): Promise<{ code: number; report: Report }> {
  const { code, stdout, stderr } = await monitor(ns, "json");
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    assert.fail(`exit ${code}, stdout is no JSON:\n${stdout}\n${stderr}`);
  }
  return { code, report: ReportSchema.parse(json) };
}

/** `family|source|table|chain|rule|reason` of every unexpected line. */
function unexpectedOf(report: Report): string[] {
  return report.families.flatMap(({ family, source, tables }) =>
    tables.flatMap(({ table, unexpected }) =>
      unexpected.map(({ chain, rule, reason }) =>
        [family, source, table, chain, rule, reason ?? ""].join("|")
      )
    )
  ).sort();
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `hostile comments (${backend}, IPv4 and IPv6): exit 1, every line named, later rules seen`,
    ...netnsRequires({ backends: [backend], families: FAMILIES }),
    fn: () =>
      withNetns(async (ns) => {
        for (const family of FAMILIES) await loadClean(ns, family, backend);
        const clean = await jsonReport(ns);
        assert.deepEqual(clean.report.errors, []);
        assert.deepEqual(unexpectedOf(clean.report), []);
        assert.equal(clean.code, 0);

        for (const family of FAMILIES) {
          for (const { comment } of HOSTILE_COMMENTS) {
            await ns.exec(tool(family, backend), [
              "-w",
              "30",
              "-A",
              "INPUT",
              "-m",
              "comment",
              "--comment",
              comment,
              "-j",
              "ACCEPT",
            ]);
          }
          const [, , source, ...rest] = USER_RULE[family].split(" ");
          await ns.exec(tool(family, backend), ["-w", "30", "-A", "INPUT", source, ...rest]);
        }

        const { code, report } = await jsonReport(ns);
        const expected = FAMILIES.flatMap((family) => [
          ...HOSTILE_COMMENTS.flatMap(({ comment }) =>
            physicalLines(comment).map((line) =>
              [family, sourceOf(family, backend), "filter", "INPUT", line, Unallowable.multiLine]
                .join("|")
            )
          ),
          [family, sourceOf(family, backend), "filter", "INPUT", USER_RULE[family], ""].join("|"),
        ]).sort();
        assert.deepEqual(report.errors, []);
        assert.deepEqual(unexpectedOf(report), expected);
        assert.equal(report.unexpected, true);
        assert.equal(code, 1);
        for (const { source, tables } of report.families) {
          // The nft view shows nothing here: iptables' own tables, shown by their save.
          const expectedTables = source === "nft" ? [] : ["filter"];
          assert.deepEqual(
            tables.map((table) => table.table),
            expectedTables,
            "no table was forged",
          );
        }

        const text = await monitor(ns, "text");
        assert.equal(text.code, 1);
        for (const family of FAMILIES) {
          assert.ok(text.stdout.includes(`${family} filter   ${USER_RULE[family]}\n`), text.stdout);
          for (const line of physicalLines(HOSTILE_COMMENTS[1].comment)) {
            assert.ok(
              text.stdout.includes(`${family} filter   ${line}  (${Unallowable.multiLine})\n`),
              `${line} in\n${text.stdout}`,
            );
          }
          assert.ok(
            text.stdout.includes(
              `${family} filter   -A INPUT -m comment --comment "a\\"\\\\  (${Unallowable.multiLine})`,
            ),
            text.stdout,
          );
          assert.ok(text.stdout.includes('\\\\\\"b\\r  ('), `CR shown escaped:\n${text.stdout}`);
        }
        assert.ok(!text.stdout.includes("\r"), "no raw CR reaches the terminal");
        assert.ok(!text.stderr.includes("\r"), "no raw CR reaches the log");
        assert.ok(text.stderr.includes("unexpected rule in ipv4 filter"), text.stderr);
      }),
  });
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `an interface name with raw newlines, printed unquoted (${backend}): exit 1, later rules seen`,
    ...netnsRequires({ backends: [backend], families: FAMILIES }),
    fn: () =>
      withNetns(async (ns) => {
        for (const family of FAMILIES) {
          await loadClean(ns, family, backend);
          // iptables only warns about such a name; no interface can have it, but `! -i`
          // matches every packet.
          await ns.exec(tool(family, backend), [
            "-w",
            "30",
            "-A",
            "INPUT",
            "!",
            "-i",
            "x\nCOMMIT\n*raw",
            "-j",
            "ACCEPT",
          ]);
          const [, , source, ...rest] = USER_RULE[family].split(" ");
          await ns.exec(tool(family, backend), ["-w", "30", "-A", "INPUT", source, ...rest]);
        }
        const { code, report } = await jsonReport(ns);
        assert.deepEqual(report.errors, []);
        assert.equal(code, 1);
        const lines = unexpectedOf(report);
        for (const family of FAMILIES) {
          const prefix = `${family}|${sourceOf(family, backend)}|`;
          assert.ok(lines.includes(`${prefix}filter|INPUT|-A INPUT ! -i x|`), lines.join("\n"));
          assert.ok(
            lines.some((line) =>
              line.startsWith(prefix) && line.includes(`|${USER_RULE[family]}|`)
            ),
            lines.join("\n"),
          );
        }
      }),
  });
}
