/**
 * The Containerfile, checked by reading it, since no container engine runs here: its
 * stages, base images and entrypoint; that every file its tools stage collects exists in
 * the Debian packages it installs (this machine runs the same Debian release, so its
 * package lists stand in for the stage's); and, by running the collecting script here,
 * that every shared library those binaries load comes along, and (as root) that the
 * collected tools really read iptables from a tree holding nothing but them and glibc.
 */

import assert from "node:assert/strict";
import { DEFAULT_OUTPUT, monitorFlags } from "../tools/compile.ts";
import { ROOT } from "./_support/cli.ts";
import { netnsRequires, withNetns } from "./_support/netns.ts";
import { missing, requires } from "./_support/requires.ts";

/** One instruction: its keyword, its arguments (continuations joined), and any heredoc. */
interface Instruction {
  keyword: string;
  args: string;
  heredoc?: string;
}

/** A build stage: its base image, its name, and its instructions. */
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Reads the Containerfile syntax used here: comments, `\` continuations, RUN heredocs. */
function parseContainerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines = text.split("\n");
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    while (line.endsWith("\\")) line = `${line.slice(0, -1)} ${lines[++i] ?? ""}`;
    const match = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    assert.ok(match, `line ${i + 1}: not an instruction: ${line}`);
    const [, keyword, rest] = match;
    const instruction: Instruction = { keyword, args: rest.replace(/\s+/g, " ") };
    const heredoc = /<<-?'?([A-Z_]+)'?/.exec(rest);
    if (heredoc !== null) {
      const body: string[] = [];
      while (lines[++i] !== heredoc[1]) {
        assert.ok(i < lines.length, `heredoc ${heredoc[1]} is not closed`);
        body.push(lines[i]);
      }
      instruction.heredoc = body.join("\n") + "\n";
    }
    if (keyword === "FROM") {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      assert.ok(from, `FROM ${instruction.args}`);
      const image = from[1].replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? "");
      stages.push({ from: image, name: from[2], instructions: [] });
    } else if (keyword === "ARG" && stages.length === 0) {
      const [name, value] = instruction.args.split("=");
      args.set(name, value ?? "");
    } else {
      assert.ok(stages.length > 0, `${keyword} before the first FROM`);
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return { args, stages };
}

const containerfile = parseContainerfile(Deno.readTextFileSync(`${ROOT}/Containerfile`));

function stage(name: string | undefined): Stage {
  const found = name === undefined
    ? containerfile.stages.at(-1)
    : containerfile.stages.find((s) => s.name === name);
  assert.ok(found, `stage ${name ?? "final"}`);
  return found;
}

function instructions(of: Stage, keyword: string): Instruction[] {
  return of.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** The `COPY --from=STAGE SRC... DEST` lines of a stage. */
function copiesFrom(of: Stage): { from: string; sources: string[]; dest: string }[] {
  return instructions(of, "COPY").flatMap(({ args }) => {
    const words = args.split(" ");
    const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
    if (from === undefined) return [];
    const paths = words.filter((w) => !w.startsWith("--"));
    return [{ from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] }];
  });
}

/** The collecting script of the tools stage (its RUN heredoc). */
function collectScript(): string {
  const script = instructions(stage("tools"), "RUN").find((r) => r.heredoc !== undefined)?.heredoc;
  assert.ok(script, "the tools stage collects with a RUN heredoc");
  return script;
}

/** The value of `name="..."` in the script: the listed paths. */
function scriptList(script: string, name: string): string[] {
  const match = new RegExp(`^${name}="([^"]*)"`, "m").exec(script);
  assert.ok(match, `${name}= in the collect script`);
  return match[1].split(/\s+/).filter((word) => word !== "");
}

Deno.test("three stages: compile on the pinned Deno, Debian tools, distroless without a shell", () => {
  const { args, stages } = containerfile;
  assert.equal(stages.length, 3);
  assert.equal(args.get("DENO_VERSION"), Deno.version.deno, "the Deno these tests run on");
  const ci = Deno.readTextFileSync(`${ROOT}/.ci/run`);
  assert.match(ci, new RegExp(`^DENO_VERSION=${Deno.version.deno.replaceAll(".", "\\.")}$`, "m"));

  const compile = stage("compile");
  assert.equal(compile.from, `docker.io/denoland/deno:debian-${Deno.version.deno}`);
  const runs = instructions(compile, "RUN").map((r) => r.args);
  assert.ok(runs.includes("deno task compile"), "the binary comes from `deno task compile`");
  assert.ok(runs.some((r) => r.startsWith("deno install --frozen")), "the lock file is enforced");

  assert.equal(stage("tools").from, "docker.io/library/debian:bookworm-slim");

  const final = stage(undefined);
  assert.match(final.from, /^gcr\.io\/distroless\/cc-debian12(:nonroot)?(@sha256:[0-9a-f]{64})?$/);
  assert.deepEqual(instructions(final, "RUN"), [], "distroless has no shell to RUN with");
  const user = instructions(final, "USER").at(-1)?.args;
  assert.ok(user !== undefined && !/^(0|root)(:|$)/.test(user), `non-root by default (${user})`);
  const entrypoint = instructions(final, "ENTRYPOINT").at(-1)?.args;
  assert.ok(entrypoint, "an ENTRYPOINT");
  const argv: unknown = JSON.parse(entrypoint);
  assert.ok(Array.isArray(argv) && argv.length === 1 && typeof argv[0] === "string");

  // The entrypoint is the binary `deno task compile` wrote in the compile stage.
  const workdir = instructions(compile, "WORKDIR").at(-1)?.args;
  const binary = copiesFrom(final).find((c) => c.from === "compile");
  assert.ok(binary && workdir);
  const name = DEFAULT_OUTPUT.split("/").at(-1);
  assert.deepEqual(binary.sources, [`${workdir}/${name}`]);
  assert.equal(binary.dest, argv[0]);
  // Everything else comes from the tools stage's collected tree, laid over the base.
  assert.deepEqual(
    copiesFrom(final).filter((c) => c.from !== "compile"),
    [{ from: "tools", sources: ["/rootfs/"], dest: "/" }],
  );
  assert.match(collectScript(), /dest="\$\{DEST:-\/rootfs\}"/);
});

Deno.test("the compile stage copies every local module the binary and the build script import", async () => {
  const copied = instructions(stage("compile"), "COPY")
    .filter((c) => !c.args.startsWith("--from="))
    .flatMap((c) => c.args.split(" ").slice(0, -1));
  for (const source of copied) {
    await Deno.stat(`${ROOT}/${source}`); // every source exists in the repository
  }
  for (const entry of ["main.ts", "tools/compile.ts"]) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      modules: { specifier: string }[];
    };
    const local = info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file://"))
      .map((s) => decodeURIComponent(new URL(s).pathname).slice(ROOT.length + 1));
    assert.ok(local.includes(entry) && local.length > 1, entry);
    for (const path of local) {
      assert.ok(
        copied.some((source) => source.endsWith("/") ? path.startsWith(source) : path === source),
        `${path} (imported by ${entry}) is not copied into the compile stage`,
      );
    }
  }
});

/** The path as a merged-/usr system has it: /bin, /sbin, /lib are links into /usr. */
function merged(path: string): string {
  return /^\/(bin|sbin|lib|lib64)(\/|$)/.test(path) ? `/usr${path}` : path;
}

async function output(command: string, args: string[]): Promise<string> {
  const result = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(result.stdout);
  if (!result.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`);
  }
  return text;
}

/** This machine is Debian bookworm, whose package lists then describe the tools stage. */
function sameDebian(): boolean {
  try {
    return /^VERSION_CODENAME=bookworm$/m.test(Deno.readTextFileSync("/etc/os-release"));
  } catch {
    return false;
  }
}

/** The packages the tools stage installs. */
function installedPackages(): string[] {
  const install = instructions(stage("tools"), "RUN").map((r) => r.args)
    .find((args) => args.includes("apt-get install"));
  assert.ok(install);
  const words = install.slice(install.indexOf("apt-get install")).split(" ").slice(2);
  return words.filter((w) => /^[a-z0-9][a-z0-9.+-]+$/.test(w) && !w.startsWith("-"))
    .filter((w, i, all) => all.indexOf(w) === i && w !== "rm");
}

const onBookworm = () => {
  if (sameDebian()) return missing({ commands: ["dpkg", "ldd"] }) !== undefined;
  console.warn("skipped: needs Debian bookworm, the tools stage's release");
  return true;
};

Deno.test({
  name: "every file the tools stage collects is in the Debian packages it installs",
  ignore: onBookworm(),
  fn: async () => {
    const packages = installedPackages();
    for (const tool of ["iptables", "nftables", "iproute2", "bpftool"]) {
      assert.ok(packages.includes(tool));
    }
    const owned = new Set<string>();
    for (const pkg of packages) {
      for (const path of (await output("dpkg", ["-L", pkg])).split("\n")) owned.add(merged(path));
    }
    const script = collectScript();
    for (const path of [...scriptList(script, "files"), ...scriptList(script, "elves")]) {
      assert.ok(owned.has(merged(path)), `${path} is in none of ${packages.join(", ")}`);
    }
    assert.match(script, /for dir in \/usr\/lib\/\*\/xtables; do/);
    assert.ok([...owned].some((path) => /^\/usr\/lib\/[^/]+\/xtables$/.test(path)));
  },
});

/** Runs the tools stage's collecting script here, into a fresh directory. */
async function collectHere(): Promise<string> {
  const dest = `${await Deno.makeTempDir({ prefix: "aim-rootfs-" })}/rootfs`;
  const result = await new Deno.Command("sh", {
    args: ["-c", collectScript()],
    env: { DEST: dest },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(result.success, new TextDecoder().decode(result.stderr));
  return dest;
}

function walk(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    return entry.isDirectory ? [path, ...walk(path)] : [path];
  });
}

Deno.test({
  name: "the collected tree holds the tools the monitor runs and every library they load",
  ignore: onBookworm(),
  fn: async () => {
    const dest = await collectHere();
    try {
      const paths = walk(dest).map((path) => path.slice(dest.length));
      const top = new Set(paths.map((path) => path.split("/")[1]));
      assert.deepEqual([...top].sort(), ["etc", "usr"], "nothing over the base's /bin, /lib");

      // Every command the permissions allow is in the image, on distroless's PATH, except
      // the plain save names, which are only run when neither backend's name exists.
      const allowed = monitorFlags(Deno.readTextFileSync(`${ROOT}/deno.json`))
        .find((flag) => flag.startsWith("--allow-run="))?.slice("--allow-run=".length)
        .split(",") ?? [];
      for (const command of allowed) {
        const present = paths.includes(`/usr/sbin/${command}`) ||
          paths.includes(`/usr/bin/${command}`);
        if (/^ip6?tables-save$/.test(command)) {
          const prefix = command.replace(/-save$/, "");
          assert.ok(paths.includes(`/usr/sbin/${prefix}-nft-save`), command);
          assert.ok(paths.includes(`/usr/sbin/${prefix}-legacy-save`), command);
        } else {
          assert.ok(present, `${command} is not in the image`);
        }
      }

      // Links stay inside the tree; every ELF finds each library it needs in the tree or
      // in glibc, which the distroless/cc base provides.
      const glibc = new Set(
        (await output("dpkg", ["-L", "libc6"])).split("\n").map((p) => p.split("/").at(-1)),
      );
      let elves = 0;
      for (const path of paths) {
        const full = dest + path;
        const info = Deno.lstatSync(full);
        if (info.isSymlink) {
          const target = Deno.realPathSync(full);
          assert.ok(target.startsWith(dest), `${path} links out of the tree to ${target}`);
          continue;
        }
        if (!info.isFile) continue;
        const head = Deno.readFileSync(full).subarray(0, 4);
        if (new TextDecoder().decode(head) !== "\x7fELF") continue;
        elves++;
        const needed = (await output("ldd", [full])).split("\n")
          .map((line) => /^\s*(\S+) => (\S+)/.exec(line))
          .filter((m): m is RegExpExecArray => m !== null);
        for (const [, soname] of needed) {
          const inTree = paths.some((p) => p.startsWith("/usr/lib/") && p.endsWith(`/${soname}`));
          assert.ok(inTree || glibc.has(soname), `${path} needs ${soname}, which is not copied`);
        }
      }
      assert.ok(elves > 100, `${elves} binaries and xtables extensions`);
      assert.ok(paths.some((p) => p.endsWith("/xtables/libxt_comment.so")));
      assert.ok(paths.includes("/etc/protocols"));
    } finally {
      await Deno.remove(dest.replace(/\/rootfs$/, ""), { recursive: true });
    }
  },
});

Deno.test({
  name: "the collected tools read both backends in a tree of nothing but them and glibc",
  ignore: onBookworm() ||
    netnsRequires({ backends: ["nft", "legacy"], families: ["ipv4", "ipv6"] }).ignore ||
    requires({ root: true, commands: ["chroot"] }).ignore,
  fn: async () => {
    const dest = await collectHere();
    try {
      // The distroless/cc base, as far as these tools care: glibc, and merged-/usr links.
      for (const path of (await output("dpkg", ["-L", "libc6"])).split("\n")) {
        if (!/\.so(\.\d+)*$/.test(path)) continue;
        const target = dest + merged(path);
        await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
        await Deno.copyFile(path, target);
      }
      for (const dir of ["bin", "sbin", "lib", "lib64"]) {
        await Deno.mkdir(`${dest}/usr/${dir}`, { recursive: true });
        await Deno.symlink(`usr/${dir}`, `${dest}/${dir}`);
      }
      await withNetns(async (ns) => {
        await ns.restore(
          "ipv4",
          "nft",
          '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.1/32 -p tcp -m comment --comment "x y" -m tcp --dport 80 -j DROP\nCOMMIT\n',
        );
        await ns.restore(
          "ipv4",
          "legacy",
          "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.2/32 -p gre -j DROP\nCOMMIT\n",
        );
        await ns.restore(
          "ipv6",
          "nft",
          "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -s 2001:db8::1/128 -j DROP\nCOMMIT\n",
        );
        const inTree = (command: string, args: string[] = []) =>
          ns.exec("chroot", [dest, command, ...args]);
        assert.match(
          await inTree("/usr/sbin/iptables-nft-save"),
          /^-A INPUT -s 192\.0\.2\.1\/32 -p tcp -m comment --comment "x y" -m tcp --dport 80 -j DROP$/m,
        );
        // The tree has no /proc for legacy's table list, so name the table.
        assert.match(
          await inTree("/usr/sbin/iptables-legacy-save", ["-t", "filter"]),
          /^-A INPUT -s 192\.0\.2\.2\/32 -p gre -j DROP$/m,
          "gre by name: /etc/protocols is there",
        );
        assert.match(
          await inTree("/usr/sbin/ip6tables-nft-save"),
          /^-A PREROUTING -s 2001:db8::1\/128 -j DROP$/m,
        );
        await inTree("/usr/sbin/ip6tables-legacy-save", ["-t", "filter"]);
        await ns.exec("nft", [
          "add table inet aim; add chain inet aim c { type filter hook input priority 0; }",
        ]);
        assert.match(
          await inTree("/usr/sbin/nft", ["-j", "list chains; list flowtables"]),
          /"table": "aim", "name": "c".*"hook": "input"/,
          "nft lists chains as JSON in the tree",
        );
        assert.match(await inTree("/usr/bin/ip", ["-V"]), /iproute2/);
        assert.match(await inTree("/usr/sbin/bpftool", ["version"]), /bpftool v/);
        assert.match(await inTree("/usr/bin/ip", ["-o", "link", "show", "lo"]), /lo:/);
      });
    } finally {
      await Deno.remove(dest.replace(/\/rootfs$/, ""), { recursive: true });
    }
  },
});
