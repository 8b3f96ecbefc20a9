/**
 * The BPF block counter: bpftool's output in both forms, a real pinned array map in a
 * private bpffs mount, and one clear line for every way reading it can fail.
 */

import assert from "node:assert/strict";
import { requires } from "./_support/requires.ts";
import { CounterWatch, parseLookupOutput, readCounter } from "../src/bpf/counter.ts";

const needsMap = requires({ root: true, commands: ["bpftool", "mount", "umount"] });

function hexBytes(value: bigint): string[] {
  return Array.from(
    { length: 8 },
    (_, i) => `0x${((value >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, "0")}`,
  );
}

async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/**
 * A private bpffs with one map pinned at `map`: by default an array (key u32, value
 * u64, 1 entry), as the block counter is.
 */
async function withPinnedMap(
  body: (map: string, dir: string) => Promise<void>,
  shape: { type: string; key: number; value: number } = { type: "array", key: 4, value: 8 },
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aim-bpffs-" });
  let mounted = false;
  try {
    await run("mount", ["-t", "bpf", "bpf", dir]);
    mounted = true;
    const map = `${dir}/iptables_block_event_counter`;
    await run("bpftool", [
      "map",
      "create",
      map,
      "type",
      shape.type,
      "key",
      String(shape.key),
      "value",
      String(shape.value),
      "entries",
      "1",
      "name",
      "aim_test",
    ]);
    await body(map, dir);
  } finally {
    if (mounted) await run("umount", [dir]);
    await Deno.remove(dir, { recursive: true });
  }
}

async function setCounter(map: string, value: bigint): Promise<void> {
  const bytes = hexBytes(value).map((byte) => byte.replace(/^0x/, ""));
  await run("bpftool", [
    "map",
    "update",
    "pinned",
    map,
    "key",
    "0",
    "0",
    "0",
    "0",
    "value",
    "hex",
    ...bytes,
  ]);
}

/**
 * A stand-in bpftool: `map show` describes a u64 array map, anything else prints
 * `stdout` and exits with `code`.
 */
async function withFakeBpftool(
  stdout: string,
  code: number,
  body: (bpftool: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aim-fake-bpftool-" });
  try {
    const script = `${dir}/bpftool`;
    const quoted = stdout.replaceAll("'", `'"'"'`);
    const show =
      `{"id":1,"type":"array","name":"fake","bytes_key":4,"bytes_value":8,"max_entries":1}`;
    await Deno.writeTextFile(
      script,
      `#!/bin/sh\ncase "$*" in *"map show"*) printf '%s' '${show}'; exit 0;; esac\n` +
        `printf '%s' '${quoted}'\nexit ${code}\n`,
    );
    await Deno.chmod(script, 0o755);
    await body(script);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parse: the plain form is a little-endian u64 of hex bytes", () => {
  const key = ["0x00", "0x00", "0x00", "0x00"];
  assert.equal(parseLookupOutput(JSON.stringify({ key, value: hexBytes(5n) })), 5n);
  assert.equal(
    parseLookupOutput(JSON.stringify({ key, value: hexBytes(0x0102030405060708n) })),
    0x0102030405060708n,
  );
  const max = (1n << 64n) - 1n;
  assert.equal(parseLookupOutput(JSON.stringify({ key, value: hexBytes(max) })), max);
});

Deno.test("parse: the BTF-formatted form, with or without the raw bytes", () => {
  const key = ["0x00", "0x00", "0x00", "0x00"];
  assert.equal(parseLookupOutput(JSON.stringify({ formatted: { key: 0, value: 42 } })), 42n);
  assert.equal(
    parseLookupOutput(JSON.stringify({ formatted: { key: 0, value: "18446744073709551615" } })),
    (1n << 64n) - 1n,
  );
  // The raw bytes are exact; a large formatted number may have lost precision in JSON.
  const both =
    `{"key":${JSON.stringify(key)},"value":${JSON.stringify(hexBytes(9007199254740993n))},` +
    `"formatted":{"key":0,"value":9007199254740993}}`;
  assert.equal(parseLookupOutput(both), 9007199254740993n);
  assert.throws(
    () => parseLookupOutput(`{"formatted":{"key":0,"value":9007199254740993}}`),
    /too large to read exactly/,
  );
});

Deno.test("parse: anything else is one clear line", () => {
  const cases: [string, RegExp][] = [
    ["", /not JSON/],
    ["Error: something\n", /not JSON: "Error: something"/],
    ["null", /bpftool found no entry for key 0/],
    [
      `{"key":["0x00"],"value":["0x01","0x02"]}`,
      /the map value has 2 bytes; expected a u64 \(8 bytes\)/,
    ],
    [`{"key":["0x00","0x00","0x00","0x00"]}`, /printed no value for key 0/],
    [`{"values":[{"cpu":0,"value":["0x01"]}]}`, /printed no value/],
    [`{"value":["zz"]}`, /unexpected bpftool output/],
    [
      `{"formatted":{"key":0,"value":{"count":1}}}`,
      /formatted value \{"count":1\} is not a number/,
    ],
    [`{"formatted":{"key":0,"value":-1}}`, /formatted value -1 is not a counter/],
  ];
  for (const [stdout, expected] of cases) {
    assert.throws(() => parseLookupOutput(stdout), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, expected);
      assert.ok(!error.message.includes("\n"), `one line: ${error.message}`);
      return true;
    });
  }
});

Deno.test({
  name: "bpftool: a real pinned map is read, and growth is reported once per increase",
  ...needsMap,
  async fn() {
    await withPinnedMap(async (map) => {
      assert.deepEqual(await readCounter(map), { ok: true, value: 0n });
      const watch = CounterWatch.forMap(map);
      assert.deepEqual(await watch.check(), { kind: "baseline", value: 0n });
      assert.deepEqual(await watch.check(), { kind: "unchanged", value: 0n });
      await setCounter(map, 3n);
      assert.deepEqual(await watch.check(), { kind: "grew", previous: 0n, value: 3n });
      assert.deepEqual(await watch.check(), { kind: "unchanged", value: 3n });
      await setCounter(map, 0x1_0000_0001n);
      assert.deepEqual(await watch.check(), { kind: "grew", previous: 3n, value: 0x1_0000_0001n });
      await setCounter(map, 1n);
      assert.deepEqual(await watch.check(), { kind: "reset", previous: 0x1_0000_0001n, value: 1n });
      await setCounter(map, 2n);
      assert.deepEqual(await watch.check(), { kind: "grew", previous: 1n, value: 2n });
    });
  },
});

Deno.test({
  name: "bpftool: a missing map is one clear error, and the baseline survives it",
  ...needsMap,
  async fn() {
    await withPinnedMap(async (map, dir) => {
      const missing = await readCounter(`${dir}/nope`);
      assert.equal(missing.ok, false);
      assert.ok(!missing.ok);
      assert.match(
        missing.message,
        new RegExp(
          `^BPF map ${dir}/nope does not exist \\(bpftool: .*No such file or directory\\)$`,
        ),
      );
      let path = map;
      const watch = new CounterWatch(() => readCounter(path));
      assert.equal((await watch.check()).kind, "baseline");
      path = `${dir}/nope`;
      const failed = await watch.check();
      assert.equal(failed.kind, "error");
      path = map;
      await setCounter(map, 1n);
      assert.deepEqual(await watch.check(), { kind: "grew", previous: 0n, value: 1n });
    });
  },
});

Deno.test({
  name: "bpftool: no permission is one clear error",
  ...requires({ root: true, commands: ["bpftool", "mount", "umount", "setpriv"] }),
  async fn() {
    await withPinnedMap(async (map) => {
      // bpftool run as the user nobody, without capabilities.
      const wrapper = await Deno.makeTempFile({ prefix: "aim-bpftool-nobody-" });
      const drop = "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all";
      await Deno.writeTextFile(wrapper, `#!/bin/sh\nexec ${drop} bpftool "$@"\n`);
      try {
        await Deno.chmod(wrapper, 0o755);
        const read = await readCounter(map, { bpftool: wrapper });
        assert.ok(!read.ok);
        assert.match(
          read.message,
          new RegExp(`^no permission to read BPF map ${map}: needs root or CAP_BPF`),
        );
      } finally {
        await Deno.remove(wrapper);
      }
    });
  },
});

Deno.test("bpftool: missing, failing or printing garbage is one clear error", async () => {
  const missing = await readCounter("/sys/fs/bpf/x", { bpftool: "/nonexistent/bpftool" });
  assert.deepEqual(missing, {
    ok: false,
    message: "cannot read BPF map /sys/fs/bpf/x: /nonexistent/bpftool not found",
  });
  await withFakeBpftool("garbage", 0, async (bpftool) => {
    const read = await readCounter("/m", { bpftool });
    assert.ok(!read.ok);
    assert.equal(
      read.message,
      `cannot read BPF map /m: bpftool printed something that is not JSON: "garbage"`,
    );
  });
  await withFakeBpftool(
    `{"error":"bpf obj get (/m): Operation not permitted"}`,
    255,
    async (bpftool) => {
      const read = await readCounter("/m", { bpftool });
      assert.ok(!read.ok);
      assert.match(
        read.message,
        /^no permission to read BPF map \/m: needs root or CAP_BPF \(bpftool: bpf obj get/,
      );
    },
  );
  await withFakeBpftool(
    `{"key":["0x00","0x00","0x00","0x00"],"formatted":{"key":0,"value":17}}`,
    0,
    async (bpftool) => {
      assert.deepEqual(await readCounter("/m", { bpftool }), { ok: true, value: 17n });
    },
  );
});

Deno.test("bpftool: one that hangs is killed after the timeout", async () => {
  const script = await Deno.makeTempFile({ prefix: "aim-hung-bpftool-" });
  try {
    await Deno.writeTextFile(script, "#!/bin/sh\nexec sleep 30\n");
    await Deno.chmod(script, 0o755);
    const read = await readCounter("/m", { bpftool: script, timeoutMs: 200 });
    assert.ok(!read.ok);
    assert.equal(read.message, `cannot read BPF map /m: ${script} gave no answer within 0.2 s`);
  } finally {
    await Deno.remove(script);
  }
});

Deno.test({
  name: "bpftool: a map of the wrong type or value size says what it is and what was expected",
  ...needsMap,
  async fn() {
    const cases = [
      {
        shape: { type: "hash", key: 4, value: 8 },
        expected: "is a hash map with 4-byte keys and 8-byte values",
      },
      {
        shape: { type: "array", key: 4, value: 4 },
        expected: "is an array map with 4-byte keys and 4-byte values",
      },
    ];
    for (const { shape, expected } of cases) {
      await withPinnedMap(async (map) => {
        const read = await readCounter(map);
        assert.deepEqual(read, {
          ok: false,
          message: `BPF map ${map} ${expected}; expected an array map with 4-byte keys ` +
            "and 8-byte (u64) values",
        });
      }, shape);
    }
  },
});
