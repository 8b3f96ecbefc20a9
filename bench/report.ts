/**
 * BENCHMARKS.md from a suite result: the targets with what was measured against them,
 * what bounds each figure, the details per ruleset, the machine and the exact commands.
 * Everything in the file is computed here from the measurements.
 *
 * @module
 */
import type { MemorySnapshot } from "./memory.ts";
import { maxKnown, median } from "./measure.ts";
import { ROOT } from "./ours.ts";
import type { ScenarioResult, SuiteResult } from "./suite.ts";
import { footprintTargets, renderFootprint } from "./footprint.ts";

const MiB = 1024 * 1024;

function ms(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(1)} ms`;
}

function mib(bytes: number | null): string {
  return bytes === null ? "n/a" : `${(bytes / MiB).toFixed(0)} MiB`;
}

function times(ratio: number): string {
  if (!Number.isFinite(ratio)) return "n/a";
  return ratio >= 100 ? `${ratio.toFixed(0)}x` : `${ratio.toFixed(1)}x`;
}

function pct(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(0)}%`;
}

function runs(values: readonly number[]): string {
  return values.length === 1 ? "1 run" : `median of ${values.length}`;
}

function scenario(result: SuiteResult, id: string): ScenarioResult | undefined {
  return result.scenarios.find((s) => s.spec.id === id);
}

/** The checks of a daemon probe after the first: rules and patterns unchanged. */
function unchanged<T>(values: readonly T[]): T[] {
  return values.slice(1);
}

interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean | null;
  bound?: string;
}

function ratioTarget(name: string, goal: number, go: number, ours: number, detail: string): Target {
  const ratio = go / ours;
  const met = ratio >= goal;
  return {
    name,
    goal: `>= ${goal}x`,
    measured: `${times(ratio)} (${detail})`,
    met,
    bound: met ? undefined : `${times(ratio)} of ${goal}x: ${pct(goal - ratio, goal)} short`,
  };
}

/** What bounds our one-shot on a scenario: its save command, start-up, or our own work. */
function oneShotBound(s: ScenarioResult): string {
  const total = median(s.ours.oneShotMs);
  if (s.phases === undefined) return `one-shot ${ms(total)}`;
  // The one-shot parses and matches once, cold: the first repetition of the probe.
  const save = median(s.phases.readMs);
  const parse = s.phases.parseMs[0];
  const match = s.phases.matchMs[0];
  const rest = total - save - parse - match;
  return `of our ${ms(total)} one-shot, ${s.ours.source.split(" (")[0]} itself takes ` +
    `${ms(save)} (${pct(save, total)}), parsing ${ms(parse)}, matching ${ms(match)}, ` +
    `process start, module loading, decoding and garbage collection the other ${ms(rest)}`;
}

function targets(result: SuiteResult): Target[] {
  const out: Target[] = [];
  for (
    const [id, oneShotGoal, checkGoal] of [["nft-5k", 25, 50], ["legacy-1k", 50, 300]] as const
  ) {
    const s = scenario(result, id);
    if (s?.go === undefined) continue;
    const label = `${
      s.spec.backend === "nft" ? "nf_tables" : "legacy"
    }, ${s.spec.services} services`;
    const oneShot = ratioTarget(
      `${label}: one-shot, end to end`,
      oneShotGoal,
      median(s.go.oneShotMs),
      median(s.ours.oneShotMs),
      `Go ${ms(median(s.go.oneShotMs))}, ours ${ms(median(s.ours.oneShotMs))}`,
    );
    if (!oneShot.met) oneShot.bound += `; ${oneShotBound(s)}`;
    out.push(oneShot);
    if (s.daemon !== undefined) {
      const walls = s.daemon.checks.map((c) => c.wallMs);
      const steady = median(unchanged(walls));
      const check = ratioTarget(
        `${label}: one check in the running daemon`,
        checkGoal,
        median(s.go.checkMs),
        steady,
        `Go ${ms(median(s.go.checkMs))} per check; ours ${ms(steady)} with rules unchanged, ` +
          `${ms(walls[0])} for the first (cold) check, ${times(median(s.go.checkMs) / walls[0])}`,
      );
      if (!check.met && s.phases !== undefined) {
        const save = median(s.phases.readMs);
        check.bound += `; ${s.ours.source.split(" (")[0]} alone takes ${ms(save)} ` +
          `(${pct(save, steady)} of our check), so no reader that runs it can do better than ` +
          `${times(median(s.go.checkMs) / save)}`;
      }
      out.push(check);
    }
  }
  const m = result.matchAlone;
  if (m !== undefined) {
    const go = median(m.go.loopMs);
    const ours = median(
      m.ours.matchMs.slice(1).length > 0 ? m.ours.matchMs.slice(1) : m.ours.matchMs,
    );
    const withCompile = median(m.go.loopMs.map((loop, i) => loop + m.go.compileMs[i]));
    out.push(ratioTarget(
      `matching alone (${m.go.rules} lines of ${m.scenario})`,
      3,
      go,
      ours,
      `Go's MatchString loop ${ms(go)}, ${ms(withCompile)} with compiling as each check does; ` +
        `ours ${ms(ours)} warm, ${ms(m.ours.matchMs[0])} cold (first run in the process)`,
    ));
  }
  for (const id of ["legacy-20k", "nft-20k"]) {
    const s = scenario(result, id);
    if (s === undefined) continue;
    const total = median(s.ours.oneShotMs);
    const peak = maxKnown(s.ours.peakRss);
    const met = total < 3000 && peak !== null && peak < 200 * MiB;
    const target: Target = {
      name: `${s.spec.backend === "nft" ? "nf_tables" : "legacy"}, ${s.spec.services} services ` +
        `(${s.ruleCount} rules): one-shot, end to end; peak RSS`,
      goal: "< 3 s; < 200 MiB",
      measured: `${ms(total)} (${runs(s.ours.oneShotMs)}); ${mib(peak)}`,
      met,
    };
    if (!met) {
      target.bound = total >= 3000 ? oneShotBound(s) : `peak RSS ${mib(peak)}`;
      if (s.phases === undefined && s.spec.backend === "nft") {
        target.bound += "; iptables-nft-save's own time dominates (see the profile below)";
      }
    }
    out.push(target);
  }
  const cpuScenarios = result.scenarios.filter((s) =>
    s.daemon !== undefined && s.daemon.checks.length > 1
  );
  for (const s of cpuScenarios) {
    const checks = s.daemon!.checks;
    const first = checks[0].cpuMs;
    const steady = median(unchanged(checks).map((c) => c.cpuMs));
    const save = median(checks.map((c) => c.childCpuMs));
    const met = steady <= first / 4;
    out.push({
      name: `${s.spec.id}: CPU of a check with rules and patterns unchanged vs the first check`,
      goal: "<= 1/4",
      measured: `${(steady / first).toFixed(2)} (ours ${ms(steady)} vs ${ms(first)}; ` +
        `the save command's own CPU, ${ms(save)} per check, is the same for both)`,
      met,
      bound: met ? undefined : `${(steady / first).toFixed(2)} of 0.25`,
    });
  }
  const kube = result.scenarios.find((s) =>
    s.daemon?.kubeLoadMs !== null && s.daemon !== undefined
  );
  if (kube?.daemon !== undefined) {
    const d = kube.daemon;
    const last = d.checks[d.checks.length - 1].memory;
    out.push({
      name: `${kube.spec.id}: steady-state RSS of the daemon with the Kubernetes client loaded`,
      goal: "reported, next to a bare deno",
      measured:
        `${mib(d.afterIdle.rss)} after ${d.checks.length} checks and ${d.idleMs / 1000} s ` +
        `idle (${mib(last.rss)} right after the last check, at most ${
          mib(Math.max(...d.checks.map((c) => c.memory.rss)))
        } over the checks); bare deno ${mib(result.memory.bare.rss)}, ` +
        `deno with only the Kubernetes client loaded ${mib(result.memory.kubeOnly.rss)}`,
      met: null,
    });
  }
  if (result.footprint !== undefined) {
    for (const t of footprintTargets(result.footprint)) {
      out.push({ ...t, bound: t.met ? undefined : "see Footprint below" });
    }
  }
  return out;
}

function targetTable(list: Target[]): string[] {
  const lines = [
    "| target | goal | measured | met |",
    "| --- | --- | --- | --- |",
  ];
  for (const t of list) {
    const met = t.met === null ? "reported" : t.met ? "yes" : `**no**: ${t.bound ?? ""}`;
    lines.push(`| ${t.name} | ${t.goal} | ${t.measured} | ${met} |`);
  }
  return lines;
}

function scenarioSection(s: ScenarioResult): string[] {
  const backend = s.spec.backend === "nft" ? "nf_tables" : "legacy";
  const out = [
    `### ${s.spec.id}: ${backend}, ${s.spec.services} services`,
    "",
    `${s.ruleCount} rules, ${s.lineCount} checked lines (\`-P\`, \`-N\`, \`-A\`); we read them ` +
    `with \`${s.ours.source}\`` +
    (s.go ? `, the Go baseline with ${s.go.processes} \`${s.go.iptables}\` processes.` : "."),
    "",
    "| measure | Go original's algorithm | ours | ratio |",
    "| --- | --- | --- | --- |",
  ];
  const row = (what: string, go: string, ours: string, ratio: string) =>
    out.push(`| ${what} | ${go} | ${ours} | ${ratio} |`);
  const goOne = s.go ? median(s.go.oneShotMs) : NaN;
  const ourOne = median(s.ours.oneShotMs);
  row(
    `one-shot, process start to exit (${runs(s.ours.oneShotMs)}${
      s.go ? `; Go ${runs(s.go.oneShotMs)}` : ""
    })`,
    s.go ? ms(goOne) : "not run",
    ms(ourOne),
    s.go ? times(goOne / ourOne) : "",
  );
  row(
    "peak RSS of the one-shot (largest run)",
    s.go ? mib(maxKnown(s.go.peakRss)) : "",
    mib(maxKnown(s.ours.peakRss)),
    "",
  );
  if (s.daemon) {
    const walls = s.daemon.checks.map((c) => c.wallMs);
    const goCheck = s.go ? median(s.go.checkMs) : NaN;
    row(
      "one check in the running daemon, first (cold)",
      s.go ? ms(goCheck) : "",
      ms(walls[0]),
      s.go ? times(goCheck / walls[0]) : "",
    );
    const steady = median(unchanged(walls));
    row(
      `one check in the running daemon, rules unchanged (median of ${walls.length - 1})`,
      s.go ? `${ms(goCheck)} (no cache)` : "",
      ms(steady),
      s.go ? times(goCheck / steady) : "",
    );
    const cpu = s.daemon.checks.map((c) => c.cpuMs);
    row(
      "CPU of our process per check: first / unchanged",
      "",
      `${ms(cpu[0])} / ${ms(median(unchanged(cpu)))}`,
      `${(median(unchanged(cpu)) / cpu[0]).toFixed(2)} of the first`,
    );
    row(
      "CPU of the save processes per check",
      "",
      ms(median(s.daemon.checks.map((c) => c.childCpuMs))),
      "",
    );
  }
  if (s.phases || s.go) {
    const p = s.phases;
    row(
      "read: listing (Go) / the save command (ours)",
      s.go ? ms(median(s.go.listMs)) : "",
      p ? ms(median(p.readMs)) : "",
      s.go && p ? times(median(s.go.listMs) / median(p.readMs)) : "",
    );
    const later = (values: number[]) => values.length > 1 ? ms(median(values.slice(1))) : "n/a";
    row(
      "parse the dump into `-S` lines: first (cold) / again, tables unchanged (reused)",
      "",
      p ? `${ms(p.parseMs[0])} / ${later(p.parseMs)}` : "",
      "",
    );
    row(
      "match: compile + MatchString loop (Go) / checkRules without cache, first (cold) / again",
      s.go ? `${ms(median(s.go.matchMs))} (loop ${ms(median(s.go.loopMs))})` : "",
      p ? `${ms(p.matchMs[0])} / ${later(p.matchMs)}` : "",
      s.go && p ? `${times(median(s.go.matchMs) / p.matchMs[0])} cold` : "",
    );
    if (p) {
      row("match with every verdict cached (unchanged rules)", "", ms(median(p.cachedMatchMs)), "");
      row(
        "load the allowlist: first (compiles) / again (cached)",
        "",
        `${ms(p.allowlistMs[0])} / ${
          p.allowlistMs.length > 1 ? ms(median(p.allowlistMs.slice(1))) : "n/a"
        }`,
        "",
      );
    }
  }
  if (s.sortedCreation !== undefined) {
    const save = median(s.sortedCreation.saveMs);
    const one = median(s.sortedCreation.oneShotMs);
    row(
      `chains created in sorted order instead (the save tool's worst case; ${
        runs(s.sortedCreation.oneShotMs)
      }): the save command alone / our one-shot`,
      s.go ? `${ms(goOne)} (as above)` : "",
      `${ms(save)} / ${ms(one)}`,
      s.go ? times(goOne / one) : "",
    );
  }
  out.push("");
  out.push(
    `Unexpected rules found: ours ${s.ours.unexpected.length}` +
      (s.go ? `, Go ${s.go.unexpected.length}` : "") +
      `, planted ${s.planted.length}; ${s.agree ? "the same set" : "**they differ**"}.` +
      (s.sameRules === null
        ? ""
        : s.sameRules
        ? " Go listed exactly the lines we parsed (SHA-256 of every table)."
        : " **Go's listed lines differ from ours.**"),
  );
  out.push("");
  return out;
}

function memoryRow(name: string, m: MemorySnapshot): string {
  return `| ${name} | ${mib(m.rss)} | ${mib(m.heapTotal)} (${mib(m.heapUsed)} used) | ` +
    `${mib(m.external)} | ${mib(m.rssFile)} | ${mib(m.rssAnon)} |`;
}

function memorySection(result: SuiteResult): string[] {
  const out = [
    "## Memory",
    "",
    "| process | RSS | V8 heap | V8 external (buffers) | file-backed (deno binary) | anonymous |",
    "| --- | --- | --- | --- | --- | --- |",
    memoryRow("bare `deno` (prints its memory, nothing else)", result.memory.bare),
    memoryRow("`deno` with `@kubernetes/client-node` loaded", result.memory.kubeOnly),
  ];
  for (const s of result.scenarios) {
    if (s.daemon === undefined) continue;
    const d = s.daemon;
    const kube = d.kubeLoadMs !== null ? " with the Kubernetes client" : "";
    out.push(
      memoryRow(
        `daemon${kube}, ${s.spec.id}, after ${d.checks.length} checks`,
        d.checks[d.checks.length - 1].memory,
      ),
    );
    if (d.idleMs > 0) {
      out.push(memoryRow(`  the same after ${d.idleMs / 1000} s idle`, d.afterIdle));
    }
  }
  const kubeScenario = result.scenarios.find((s) => s.daemon?.kubeLoadMs != null);
  out.push("");
  if (kubeScenario?.daemon !== undefined) {
    const d = kubeScenario.daemon;
    const bare = result.memory.bare.rss;
    const kube = result.memory.kubeOnly.rss - bare;
    const checks = d.afterIdle.rss - result.memory.kubeOnly.rss;
    const heapRoom = d.afterIdle.heapTotal - d.afterIdle.heapUsed;
    const small = kubeScenario.daemonForSize;
    out.push(
      `What the daemon's ${mib(d.afterIdle.rss)} at ${kubeScenario.spec.id} is made of: ` +
        `the deno runtime, ${mib(bare)} (a bare process); \`@kubernetes/client-node\`, ` +
        `${mib(kube)} more (its code and data, mostly in the V8 heap; loading it takes ` +
        `${ms(result.memory.kubeLoadMs)}), the largest part we add; and the checks, ` +
        `${mib(checks)} more: the rules of the last check (the dump text, one string and ` +
        `one object per line) and their verdicts, the garbage of each check (the new dump ` +
        `text, ${
          (kubeScenario.phases?.saveBytes ?? 0) / MiB > 0
            ? mib(kubeScenario.phases?.saveBytes ?? 0)
            : "a few MiB"
        } a check) ` +
        `until V8 collects it, and heap V8 keeps after collecting (${mib(heapRoom)} of its ` +
        `${mib(d.afterIdle.heapTotal)} heap is free). V8 does not shrink its heap while the ` +
        `process waits for the next check` +
        (small === undefined
          ? "."
          : `; with \`--optimize-for-size\` the same daemon stays at ${
            mib(small.checks[small.checks.length - 1].memory.rss)
          }.`),
    );
    out.push("");
  }
  return out;
}

function profileSection(result: SuiteResult): string[] {
  const out: string[] = [];
  for (const s of result.scenarios) {
    const p = s.profile;
    if (p === undefined && s.savePerf.length === 0) continue;
    const save = s.ours.source.split(" (")[0];
    out.push(`## Profiles, ${s.spec.id}`, "");
    if (p !== undefined) {
      out.push(
        `Our one-shot under \`deno run --cpu-prof\`: ${ms(p.totalMs)} sampled, of which ` +
          `${ms(p.idleMs)} idle (waiting for \`${save}\` and files) and ` +
          `${ms(p.garbageCollectorMs)} in the garbage collector. Top functions by self time:`,
        "",
        "| function | self time |",
        "| --- | --- |",
        ...p.top.map((f) => `| \`${f.name.replaceAll("|", "\\|")}\` | ${ms(f.selfMs)} |`),
        "",
      );
    }
    for (const perf of s.savePerf) {
      out.push(
        `\`perf\` of \`iptables-nft-save\` alone, ${perf.label} (top symbols by overhead):`,
        "",
        "```",
        ...perf.symbols,
        "```",
        "",
      );
    }
    if (s.sortedCreation !== undefined && s.phases !== undefined) {
      out.push(
        `\`${save}\` took ${ms(median(s.phases.readMs))} on chains created in a kube-proxy-like ` +
          `order and ${ms(median(s.sortedCreation.saveMs))} on the same chains created sorted: ` +
          "iptables-nft 1.8.9 keeps user chains sorted by inserting each one into a list as the " +
          "kernel returns them (in creation order), comparing names with `strcmp` from the " +
          "front, so chains that arrive sorted cost a walk of the whole list each. The Go " +
          "baseline's `iptables -t T -S CHAIN` loads one chain and does not pay this, except " +
          "in the one `iptables -t T -S` per table that lists the chains.",
        "",
      );
    }
  }
  return out;
}

/** Renders BENCHMARKS.md. */
export function renderMarkdown(result: SuiteResult): string {
  const m = result.machine;
  const out: string[] = [
    "# Benchmarks",
    "",
    `Generated by \`deno task bench\` (\`bench/suite.ts\`${result.small ? " --small" : ""}) on ` +
    `${result.startedAt.slice(0, 16).replace("T", " ")} UTC in ` +
    `${(result.durationMs / 60000).toFixed(1)} minutes. Do not edit: rerun the suite.`,
    "",
    "Each ruleset is a generated kube-proxy + Cilium + kubelet node (`bench/ruleset.ts`, five " +
    "planted user rules) loaded with `iptables-restore` into a throw-away network namespace, " +
    "its chains created in a kube-proxy-like order, not sorted (`bench/creation_order.ts`; " +
    "iptables-nft-save is several times slower on chains created sorted, measured below); " +
    "the allowlists are the shipped `patterns/ipv4`. The baseline is the Go original's " +
    "algorithm (`bench/go_baseline/main.go`, built with Debian's Go and go-iptables): " +
    "`iptables -t T -S` per table, one `iptables -t T -S CHAIN` process per chain (with " +
    "`--wait`, as go-iptables runs it), then Go's `regexp` over rules x patterns. Both run " +
    "in the same namespace, on the same rules, with the same patterns, in the same run; Go " +
    "and our one-shots alternate. Ours runs as `deno run` with the monitor task's flags " +
    "from deno.json (the compiled binary cannot be built here: `deno compile` needs to " +
    "download `denort`).",
    "",
    "## Machine",
    "",
    "| | |",
    "| --- | --- |",
    `| CPU | ${m.cpu}, ${m.cores} cores (shared with other work; load average ${m.loadAverage} at the start) |`,
    `| memory | ${m.memoryGiB} GiB |`,
    `| kernel | ${m.kernel} |`,
    `| Deno | ${m.deno} (V8 ${m.v8}) |`,
    `| Go | ${m.go}; go-iptables ${m.goIptables} (Debian) |`,
    `| iptables | ${m.iptables} |`,
    `| peak RSS measured with | ${m.peakRssMethod} |`,
    "",
    "## Targets",
    "",
    ...targetTable(targets(result)),
    "",
    "Go's daemon check is its in-process check time (listing, compiling, matching): the " +
    "original keeps nothing between checks, so every interval costs that. Ours is " +
    "`scan()` called again in one process with the daemon's verdict cache (`bench/probe.ts " +
    "daemon`), the first call cold, the later ones with rules and patterns unchanged.",
    "",
    "## Per ruleset",
    "",
  ];
  for (const s of result.scenarios) out.push(...scenarioSection(s));
  const ma = result.matchAlone;
  if (ma !== undefined) {
    out.push(
      "## Matching alone",
      "",
      `The ${ma.go.rules} lines of ${ma.scenario}, as we parsed them, matched against the shipped ` +
        "allowlist in one process each, repeated: Go compiles the table's and global patterns " +
        "and runs `MatchString` pattern by pattern until the first match (as the original " +
        "does at every check); ours runs `checkRules` without a verdict cache (one joined " +
        "regexp per table).",
      "",
      "| | Go | ours |",
      "| --- | --- | --- |",
      `| per repetition (median of ${ma.go.loopMs.length}) | ${ms(median(ma.go.loopMs))} loop + ${
        ms(median(ma.go.compileMs))
      } compiling | ${
        ms(median(ma.ours.matchMs.slice(1).length > 0 ? ma.ours.matchMs.slice(1) : ma.ours.matchMs))
      } (first, cold: ${ms(ma.ours.matchMs[0])}) |`,
      `| compiling the allowlist once | (in each repetition) | ${ms(ma.ours.allowlistMs)} |`,
      `| same unexpected rules | ${ma.agree ? "yes" : "**no**"} | |`,
      "",
    );
  }
  if (result.footprint !== undefined) out.push(...renderFootprint(result.footprint));
  out.push(...memorySection(result));
  out.push(...profileSection(result));
  out.push(
    "## Commands",
    "",
    "Run from the repository root; `NS` is the benchmark's namespace.",
    "",
  );
  out.push("```sh");
  for (const [name, command] of Object.entries(result.commands)) {
    out.push(`# ${name}`);
    out.push(
      command
        .replace(/ip netns exec aim-[0-9a-z-]+ /, "ip netns exec NS ")
        .replaceAll(/\/tmp\/aim-bench-[A-Za-z0-9_]+/g, "$TMP")
        .replaceAll(`${Deno.execPath()} `, "deno ")
        .replaceAll(`${ROOT}/`, ""),
    );
  }
  out.push("```", "");
  out.push(
    "`$LEGACY_IPTABLES_DIR` holds a symlink `iptables` -> `xtables-legacy-multi`, because " +
      "go-iptables runs whatever `iptables` is on PATH.",
    "",
  );
  out.push(
    "Setup: `apt-get install -y golang-go golang-github-coreos-go-iptables-dev iptables iproute2 time` " +
      "(the suite installs go-iptables itself when it is missing), then `deno task bench`.",
    "",
  );
  return out.join("\n");
}
