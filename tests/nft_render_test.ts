/**
 * The nft view's lines from `nft -j` objects (src/nft/objects.ts, render.ts): the forms
 * the README documents, one line per object whatever a node user names or comments,
 * nothing dropped (unknown shapes become JSON), volatile fields left out, and never an
 * exception, also on random JSON.
 */
import assert from "node:assert/strict";
import { objectLines } from "../src/nft/objects.ts";
import type { Json } from "../src/nft/render.ts";
import { isStandardChain } from "../src/nft/xtables.ts";

const texts = (item: Json) => objectLines(item).map((line) => line.text);

Deno.test("tables, chains and rules as the nft statements that would create them", () => {
  assert.deepEqual(texts({ table: { family: "inet", name: "sneaky", handle: 3 } }), [
    "add table inet sneaky",
  ]);
  assert.deepEqual(
    texts({
      chain: {
        family: "inet",
        table: "sneaky",
        name: "in",
        handle: 1,
        type: "filter",
        hook: "input",
        prio: -10,
        policy: "accept",
      },
    }),
    ["add chain inet sneaky in { type filter hook input priority -10; policy accept; }"],
  );
  const rule: Json = {
    rule: {
      family: "inet",
      table: "sneaky",
      chain: "in",
      handle: 2,
      expr: [
        { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 22 } },
        { counter: { packets: 12, bytes: 3456 } },
        { drop: null },
      ],
    },
  };
  assert.deepEqual(objectLines(rule), [{
    family: "inet",
    table: "inet sneaky",
    chain: "in",
    text: "add rule inet sneaky in tcp dport 22 counter drop",
  }]);
});

Deno.test("hostile names and comments stay on one line and cannot pass for syntax", () => {
  const hostile = 'x"\n; add rule ip t c accept\r\u2028\u0085';
  const lines = [
    ...texts({ table: { family: "inet", name: hostile } }),
    ...texts({ chain: { family: "inet", table: hostile, name: hostile } }),
    ...texts({
      rule: {
        family: "inet",
        table: "t",
        chain: hostile,
        expr: [{ match: { op: "==", left: { meta: { key: "iifname" } }, right: hostile } }],
        comment: hostile,
      },
    }),
  ];
  for (const line of lines) {
    assert.ok(!/[\n\r\u2028\u2029\u0085]/.test(line), JSON.stringify(line));
    assert.ok(!line.includes('x"\n'), line);
  }
  assert.equal(
    lines[2],
    'add rule inet t "x\\"\\n; add rule ip t c accept\\r\\u2028\\u0085" meta iifname ' +
      '"x\\"\\n; add rule ip t c accept\\r\\u2028\\u0085" comment ' +
      '"x\\"\\n; add rule ip t c accept\\r\\u2028\\u0085"',
  );
});

Deno.test("what has no syntax here is kept as JSON, never dropped", () => {
  assert.deepEqual(
    texts({
      rule: {
        family: "ip",
        table: "filter",
        chain: "INPUT",
        expr: [{ "brand new": { x: [1, "two"] } }, { drop: null }],
      },
    }),
    ['add rule ip filter INPUT {"brand new":{"x":[1,"two"]}} drop'],
  );
  // An object the schema does not accept: its kind and JSON, counted under its table.
  assert.deepEqual(objectLines({ rule: { family: "ip", table: "t", chain: 7, expr: "x" } }), [{
    family: "ip",
    table: "ip t",
    chain: "",
    text: 'add rule {"family":"ip","table":"t","chain":7,"expr":"x"}',
  }]);
  assert.deepEqual(texts({ "new kind": { family: "inet", table: "t" } }), [
    'add "new kind" {"family":"inet","table":"t"}',
  ]);
  assert.deepEqual(texts(["not", "an", "object"]), ['add ["not","an","object"]']);
  assert.deepEqual(texts({ metainfo: { version: "1.0.6" } }), []);
});

Deno.test("sets, maps and their elements, flowtables, named objects; volatile fields left out", () => {
  assert.deepEqual(
    texts({
      map: {
        family: "ip",
        name: "service-ips",
        table: "kube-proxy",
        type: ["ipv4_addr", "inet_proto", "inet_service"],
        handle: 4,
        map: "verdict",
        elem: [[{ concat: ["10.0.0.10", "tcp", 53] }, { goto: { target: "service-X" } }]],
      },
    }),
    [
      'add map ip kube-proxy service-ips {"type":["ipv4_addr","inet_proto","inet_service"],"map":"verdict"}',
      "add element ip kube-proxy service-ips { 10.0.0.10 . tcp . 53 : goto service-X }",
    ],
  );
  assert.deepEqual(
    texts({
      set: {
        family: "inet",
        table: "t",
        name: "s",
        type: "ipv4_addr",
        elem: [{ elem: { val: "1.2.3.4", timeout: 60, expires: 17 } }],
      },
    }),
    ['add set inet t s {"type":"ipv4_addr"}', "add element inet t s { 1.2.3.4 timeout 60 }"],
  );
  assert.deepEqual(
    texts({
      flowtable: {
        family: "inet",
        table: "t",
        name: "ft",
        handle: 2,
        hook: "ingress",
        prio: 0,
        dev: "eth0",
      },
    }),
    ["add flowtable inet t ft { hook ingress; priority 0; devices = { eth0 }; }"],
  );
  assert.deepEqual(
    texts({ counter: { family: "inet", table: "t", name: "c", packets: 5, bytes: 6 } }),
    ["add counter inet t c"],
  );
});

Deno.test("common statements: nat, mangle, vmap, numgen, reject, flow offload", () => {
  const rule = (...expr: Json[]) =>
    texts({ rule: { family: "ip", table: "t", chain: "c", expr } })[0].slice(
      "add rule ip t c ".length,
    );
  assert.equal(
    rule({
      match: {
        op: "!=",
        left: { payload: { protocol: "ip", field: "saddr" } },
        right: { prefix: { addr: "10.0.0.0", len: 8 } },
      },
    }),
    "ip saddr != 10.0.0.0/8",
  );
  assert.equal(
    rule({ match: { op: "==", left: { numgen: { mode: "inc", mod: 2, offset: 0 } }, right: 0 } }, {
      drop: null,
    }),
    "numgen inc mod 2 0 drop",
  );
  assert.equal(
    rule({ dnat: { addr: "fd00::1", port: 80 } }),
    "dnat to [fd00::1]:80",
  );
  assert.equal(rule({ dnat: { addr: "10.0.0.1", port: 80 } }), "dnat to 10.0.0.1:80");
  assert.equal(
    rule({
      mangle: {
        key: { meta: { key: "mark" } },
        value: { "|": [{ meta: { key: "mark" } }, 16384] },
      },
    }),
    "meta mark set meta mark | 16384",
  );
  assert.equal(
    rule({ match: { op: "==", left: { "&": [{ meta: { key: "mark" } }, 16384] }, right: 0 } }, {
      return: null,
    }),
    "meta mark & 16384 == 0 return",
  );
  assert.equal(
    rule({ reject: { type: "icmp", expr: "port-unreachable" } }),
    "reject with icmp port-unreachable",
  );
  assert.equal(rule({ flow: { op: "add", flowtable: "@ft" } }), "flow add @ft");
  assert.equal(rule({ xt: { type: "match", name: "comment" } }), 'xt match "comment"');
  assert.equal(rule({ jump: { target: "x" } }), "jump x");
});

Deno.test("objectLines never throws and always gives single lines, on random JSON", () => {
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const keys = [
    "rule",
    "chain",
    "table",
    "set",
    "map",
    "flowtable",
    "match",
    "payload",
    "elem",
    "expr",
    "family",
    "table",
    "name",
    "op",
    "left",
    "right",
    "set",
    "prefix",
    "dnat",
    "x\n",
  ];
  const value = (depth: number): Json => {
    const r = random();
    if (depth > 4 || r < 0.2) {
      return ["a\nb", 1, null, true, "ip", "\u2028"][Math.floor(random() * 6)];
    }
    if (r < 0.4) return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
    const object: { [key: string]: Json } = {};
    for (let i = 0; i < 1 + Math.floor(random() * 3); i++) {
      object[keys[Math.floor(random() * keys.length)]] = value(depth + 1);
    }
    return object;
  };
  for (let i = 0; i < 3000; i++) {
    const item = value(0);
    for (const line of objectLines(item)) {
      assert.ok(!/[\n\r\u2028\u2029]/.test(line.text + line.table), JSON.stringify(item));
    }
  }
});

Deno.test("iptables' built-in chains are standard; other priorities, hooks or types are not", () => {
  const chain = (over: Record<string, Json>) => ({
    family: "ip",
    table: "filter",
    name: "INPUT",
    handle: 1,
    type: "filter",
    hook: "input",
    prio: 0,
    policy: "accept",
    ...over,
  });
  assert.equal(isStandardChain(chain({})), true);
  assert.equal(isStandardChain(chain({ policy: "drop" })), true);
  assert.equal(isStandardChain(chain({ prio: -10 })), false);
  assert.equal(isStandardChain(chain({ hook: "prerouting" })), false);
  assert.equal(isStandardChain(chain({ name: "SNEAKY" })), false);
  assert.equal(isStandardChain(chain({ table: "security", prio: 150 })), true);
  assert.equal(isStandardChain({ family: "ip", table: "filter", name: "KUBE-FIREWALL" }), true);
  // Names iptables cannot write (a newline forging dump lines, a space, over 28 bytes).
  for (const name of ["x\nCOMMIT\n*raw", "a b", "A".repeat(29), "-A", 'q"uote']) {
    assert.equal(isStandardChain({ family: "ip", table: "filter", name }), false, name);
  }
  assert.equal(isStandardChain({ family: "ip", table: "nat", name: "A".repeat(28) }), true);
});
