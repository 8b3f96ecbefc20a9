/**
 * The monitor's V8 flags compile only the automaton's walk over a rule with Maglev
 * (`--maglev-filter`, one name prefix, in the `monitor` task of deno.json): the flag must
 * keep naming methods that exist, or matching silently falls back to the interpreter.
 */
import assert from "node:assert/strict";
import { monitorFlags } from "../tools/compile.ts";
import { ROOT } from "./_support/cli.ts";

function v8Flags(): string[] {
  const flags = monitorFlags(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const v8 = flags.find((flag) => flag.startsWith("--v8-flags="));
  assert.ok(v8, "the monitor task sets V8 flags");
  return v8.slice("--v8-flags=".length).split(",");
}

Deno.test("maglev filter: optimizing tiers off, Maglev only for the automaton's walk", () => {
  const flags = v8Flags();
  assert.ok(flags.includes("--no-opt"), "no TurboFan");
  assert.ok(!flags.includes("--no-maglev"), "Maglev on, for what the filter names");
  const filters = flags.filter((flag) => flag.startsWith("--maglev-filter="));
  assert.deepEqual(filters, ["--maglev-filter=#walk*"]);
  const engine = Deno.readTextFileSync(`${ROOT}/src/patterns/engine.ts`);
  const walks = [...engine.matchAll(/^ {2}(#walk\w*)\(/gm)].map((match) => match[1]);
  assert.deepEqual(walks.sort(), ["#walkDense", "#walkSparse"]);
  // Nothing else of ours is named so, and would be compiled too.
  const others = (dir: string): string[] =>
    [...Deno.readDirSync(dir)].flatMap((entry) => {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) return others(path);
      return entry.name.endsWith(".ts") && !path.endsWith("/patterns/engine.ts") ? [path] : [];
    });
  const files = others(`${ROOT}/src`);
  assert.ok(files.length > 20);
  for (const path of files) assert.doesNotMatch(Deno.readTextFileSync(path), /#walk/, path);
});

Deno.test("maglev filter: V8 compiles the walk with Maglev, and nothing else", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/walk.ts`;
    await Deno.writeTextFile(
      script,
      `import { compileGoRegexp } from "${ROOT}/src/patterns/regexp.ts";
import { TableMatcher } from "${ROOT}/src/patterns/matcher.ts";
const compiled = compileGoRegexp("^-A KUBE-SVC-[A-Z0-9]{16} .*-j KUBE-SEP-");
if (!compiled.ok) throw new Error(compiled.message);
const matcher = new TableMatcher([{ file: "nat", line: 1, regexp: compiled.regexp }]);
let allowed = 0;
for (let i = 0; i < 20000; i++) {
  const rule = "-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment \\"ns/svc" + i + "\\" -j KUBE-SEP-X";
  if (matcher.matches(rule)) allowed++;
}
console.log("allowed", allowed);
`,
    );
    const flags = v8Flags();
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", `--v8-flags=${[...flags, "--trace-opt"].join(",")}`, "-A", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(text, /allowed 20000/);
    const compiled = text.split("\n").filter((line) => /compiling method/.test(line));
    assert.ok(
      compiled.some((line) => /#walkDense/.test(line) && /MAGLEV/.test(line)),
      `the walk was not compiled with Maglev:\n${text.slice(0, 2000)}`,
    );
    for (const line of compiled) assert.match(line, /#walk/, "only the walk is compiled");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
