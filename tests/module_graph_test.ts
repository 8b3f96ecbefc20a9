/**
 * What a one-shot check loads: main.ts's static imports, followed through every module
 * they import. The Kubernetes client (about 85 MiB) and zod (9.5 MiB) must be loaded only
 * on demand, by dynamic imports, so that `-once -dryRun` never pays for them (README,
 * "What it costs a node").
 */
import assert from "node:assert/strict";
import { ROOT } from "./_support/cli.ts";

/** The specifiers a module imports statically for its values (`import type` loads nothing). */
function staticImports(source: string): string[] {
  const found: string[] = [];
  const statement = /^(?:import|export)\s+(type\s+)?(?:[^;]*?\s+from\s+)?"([^"]+)";/gms;
  for (const match of source.matchAll(statement)) {
    if (match[1] === undefined) found.push(match[2]);
  }
  return found;
}

/** Every module main.ts loads before running anything, and the packages among them. */
function staticGraph(entry: string): { modules: Set<string>; packages: Set<string> } {
  const modules = new Set<string>();
  const packages = new Set<string>();
  const visit = (path: string) => {
    if (modules.has(path)) return;
    modules.add(path);
    for (const specifier of staticImports(Deno.readTextFileSync(path))) {
      if (specifier.startsWith(".")) visit(new URL(specifier, `file://${path}`).pathname);
      else packages.add(specifier);
    }
  };
  visit(entry);
  return { modules, packages };
}

Deno.test("a one-shot check loads neither the Kubernetes client nor zod", () => {
  const { modules, packages } = staticGraph(`${ROOT}/main.ts`);
  for (const needed of ["src/scan.ts", "src/nft/read.ts", "src/iptables/save_parser.ts"]) {
    assert.ok(modules.has(`${ROOT}/${needed}`), `${needed} is loaded at start`);
  }
  assert.ok(
    !modules.has(`${ROOT}/src/kube_reporting.ts`),
    "the Kubernetes side is loaded on demand",
  );
  assert.ok(!modules.has(`${ROOT}/src/nft/objects.ts`), "nft objects beyond chains on demand");
  for (const onDemand of ["src/metrics_server.ts", "src/watch/watcher.ts"]) {
    assert.ok(!modules.has(`${ROOT}/${onDemand}`), `${onDemand} only when the flags ask`);
  }

  for (const name of packages) {
    assert.ok(name.startsWith("node:"), `main.ts loads ${name} at start`);
  }
});

Deno.test("the import scanner sees what it must", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type { B } from "./b.ts";',
    "import {",
    "  c,",
    "  type D,",
    '} from "zod";',
    'export { e } from "./e.ts";',
    'const later = await import("./f.ts");',
  ].join("\n");
  assert.deepEqual(staticImports(source), ["./a.ts", "zod", "./e.ts"]);
});
