import assert from "node:assert/strict";
import type { CheckReport } from "../src/check.ts";
import { formatJsonReport } from "../src/report/json.ts";
import { formatTextReport, printable } from "../src/report/text.ts";

const REPORT: CheckReport = {
  node: "aks-nodepool1-0",
  verdict: "true",
  families: [{
    family: "ipv4",
    source: "iptables-nft-save (nf_tables)",
    tables: [
      { table: "nat", rules: 120, unexpected: [] },
      {
        table: "filter",
        rules: 12,
        unexpected: [{ chain: "INPUT", rule: "-A INPUT -s 1.2.3.4/32 -j DROP" }],
      },
    ],
  }],
  errors: [{
    kind: "pattern",
    family: "ipv4",
    file: "/etc/config/nat",
    line: 3,
    message: "error parsing regexp: missing closing ): `(`",
  }],
};

Deno.test("the JSON report follows the contract in DESIGN.md", () => {
  assert.deepEqual(JSON.parse(formatJsonReport(REPORT)), {
    node: "aks-nodepool1-0",
    unexpected: true,
    families: [{
      family: "ipv4",
      source: "iptables-nft-save (nf_tables)",
      tables: [
        { table: "nat", rules: 120, unexpected: [] },
        {
          table: "filter",
          rules: 12,
          unexpected: [{ chain: "INPUT", rule: "-A INPUT -s 1.2.3.4/32 -j DROP" }],
        },
      ],
    }],
    errors: [{
      kind: "pattern",
      family: "ipv4",
      file: "/etc/config/nat",
      line: 3,
      message: "error parsing regexp: missing closing ): `(`",
    }],
  });
});

Deno.test("the text report: a summary table, the unexpected rules, the errors, the verdict", () => {
  assert.equal(
    formatTextReport(REPORT),
    [
      "FAMILY  SOURCE                         TABLE   RULES  UNEXPECTED",
      "ipv4    iptables-nft-save (nf_tables)  nat       120           0",
      "ipv4    iptables-nft-save (nf_tables)  filter     12           1",
      "",
      "Unexpected rules (1):",
      "  ipv4 filter   -A INPUT -s 1.2.3.4/32 -j DROP",
      "",
      "Errors (1):",
      "  /etc/config/nat:3: error parsing regexp: missing closing ): `(`",
      "",
      'Verdict on node aks-nodepool1-0: user iptables rules found (label "true")',
      "",
    ].join("\n"),
  );
});

Deno.test("an undecided check says so in words", () => {
  const text = formatTextReport({ ...REPORT, verdict: "unknown", families: [] });
  assert.match(text, /Verdict on node aks-nodepool1-0: undecided: something could not be read/);
  assert.equal(JSON.parse(formatJsonReport({ ...REPORT, verdict: "unknown" })).unexpected, false);
});

Deno.test("rule text is shown with control characters and direction overrides escaped", () => {
  assert.equal(
    printable('-A INPUT -m comment --comment "a\r\u001b[2J\t\u0085\u202eb\u2066\u0000" -j ACCEPT'),
    '-A INPUT -m comment --comment "a\\r\\x1b[2J\\t\\x85\\u202eb\\u2066\\x00" -j ACCEPT',
  );
  assert.equal(printable("plain ünïcödé, emoji 🙂"), "plain ünïcödé, emoji 🙂");
});
