/**
 * Generated patterns and rule lines, judged by Go's `regexp` (tests/go/regexp_oracle.go)
 * and by `compileGoRegexp`: both must accept the same patterns, give the same error
 * text for rejected ones, and agree on every match. The generator is seeded; a failure
 * prints the seed, and `FUZZ_SEED=<seed>` replays the same run. `FUZZ_PATTERNS=<n>`
 * changes how many patterns are generated.
 */

import {
  askGo,
  compare,
  describe,
  type Discrepancy,
  type Engine,
  type EngineOutcome,
  type OracleCase,
  type OracleVerdict,
  startEngine,
} from "./_support/go_oracle.ts";
import { requires } from "./_support/requires.ts";
import { decodeGoUtf8 } from "../src/patterns/go_utf8.ts";

// --- Seeded randomness --------------------------------------------------------------------

/** A small seeded generator (mulberry32): the same seed gives the same run. */
class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

// --- Alphabets ----------------------------------------------------------------------------

const chars = (text: string): string[] => [...text];

const ASCII_LETTERS = chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
const DIGITS = chars("0123456789");
const WORD = [...ASCII_LETTERS, ...DIGITS, "_"];
const PUNCT = chars(` -./:=!"',;@#%&~<>_+*?()[]{}|^$\\`);
const LATIN1 = chars("éèàçñöüßÿµÉÀÖÜ×÷¡¿\u00a0");
const GREEK = chars("αβγδλπΣσςΩωΔΛ");
const FOLD_SPECIAL = chars("kKsS\u212a\u017f");
const EMOJI = chars("😀😂🙏🚀👍");
const ODD = chars("\ufffd\u2028\u2029\t\r\v\f\u0085中日\u0301");
const ANY_CHAR = [
  ...ASCII_LETTERS,
  ...DIGITS,
  ...PUNCT,
  ...LATIN1,
  ...GREEK,
  ...FOLD_SPECIAL,
  ...EMOJI,
  ...ODD,
];

/** Pieces of real rule lines, so patterns and lines share vocabulary. */
const RULE_WORDS = [
  "-A",
  "-P",
  "-N",
  "INPUT",
  "FORWARD",
  "OUTPUT",
  "PREROUTING",
  "POSTROUTING",
  "KUBE-SERVICES",
  "KUBE-SVC-TCOU7JCQXEZGVUNU",
  "KUBE-SEP-ZXMNUKOKXUTL2MK2",
  "KUBE-MARK-MASQ",
  "CILIUM_POST_nat",
  "cilium_host",
  "-j",
  "ACCEPT",
  "DROP",
  "RETURN",
  "MASQUERADE",
  "DNAT",
  "-p",
  "tcp",
  "udp",
  "-m",
  "comment",
  "--comment",
  '"kube-system/kube-dns:dns"',
  "--dport",
  "53",
  "443",
  "-s",
  "-d",
  "10.244.0.0/16",
  "10.0.0.10/32",
  "168.63.129.16/32",
  "fd00::a/128",
  "!",
  "-i",
  "lo",
  "eth0",
  "--to-destination",
  "10.244.1.7:8080",
  "--set-xmark",
  "0x4000/0x4000",
  "conntrack",
  "--ctstate",
  "RELATED,ESTABLISHED",
];

/** A rule line as `iptables -S` prints it. */
function ruleLine(rng: Random): string {
  const chain = rng.pick(["INPUT", "FORWARD", "KUBE-SERVICES", "CILIUM_POST_nat", "OUTPUT"]);
  switch (rng.int(5)) {
    case 0:
      return `-P ${chain} ${rng.pick(["ACCEPT", "DROP"])}`;
    case 1:
      return `-N ${chain}`;
    default: {
      const words = ["-A", chain];
      const n = rng.between(2, 9);
      for (let i = 0; i < n; i++) words.push(rng.pick(RULE_WORDS));
      return words.join(" ");
    }
  }
}

function noiseLine(rng: Random): string {
  const n = rng.between(0, 24);
  let out = "";
  for (let i = 0; i < n; i++) out += rng.pick(ANY_CHAR);
  return out;
}

// --- Pattern generation -------------------------------------------------------------------

/** A generated piece of pattern and a way to produce text it (probably) matches. */
interface Piece {
  readonly src: string;
  readonly sample: () => string;
}

interface Flags {
  readonly fold: boolean;
}

const META_OUTSIDE = new Set(chars("\\.+*?()|[]{}^$"));
const META_INSIDE = new Set(chars("\\]-^["));

function escapeOutside(c: string): string {
  return META_OUTSIDE.has(c) ? `\\${c}` : c;
}

function escapeInside(c: string): string {
  return META_INSIDE.has(c) ? `\\${c}` : c;
}

/** The case variants Go's folding treats as equal to `c` (a useful subset). */
function foldVariants(c: string): string[] {
  const special: Record<string, string[]> = {
    k: ["k", "K", "\u212a"],
    K: ["k", "K", "\u212a"],
    "\u212a": ["k", "K", "\u212a"],
    s: ["s", "S", "\u017f"],
    S: ["s", "S", "\u017f"],
    "\u017f": ["s", "S", "\u017f"],
    σ: ["σ", "Σ", "ς"],
    Σ: ["σ", "Σ", "ς"],
    ς: ["σ", "Σ", "ς"],
    µ: ["µ", "μ", "Μ"],
  };
  if (special[c]) return special[c];
  const variants = new Set([c]);
  for (const v of [c.toLowerCase(), c.toUpperCase()]) {
    if ([...v].length === 1) variants.add(v);
  }
  return [...variants];
}

function literalSample(rng: Random, text: string, flags: Flags): () => string {
  if (!flags.fold) return () => text;
  return () => chars(text).map((c) => rng.pick(foldVariants(c))).join("");
}

/** A code point in [lo, hi], never a surrogate. */
function codePointIn(rng: Random, lo: number, hi: number): string {
  const cp = rng.between(lo, hi);
  return cp >= 0xd800 && cp <= 0xdfff ? "\ufffd" : String.fromCodePoint(cp);
}

interface ClassItem {
  readonly src: string;
  readonly member: () => string;
}

function classItems(rng: Random): ClassItem[] {
  const pool: (() => ClassItem)[] = [
    () => {
      const c = rng.pick(ANY_CHAR);
      return { src: escapeInside(c), member: () => c };
    },
    () => {
      const [lo, hi] = rng.pick([
        ["a", "z"],
        ["A", "Z"],
        ["0", "9"],
        ["a", "f"],
        ["α", "ω"],
        ["à", "ÿ"],
        [" ", "/"],
      ]);
      const src = `${lo}-${hi}`;
      return { src, member: () => codePointIn(rng, lo.codePointAt(0)!, hi.codePointAt(0)!) };
    },
    () => ({ src: "\\x{1F600}-\\x{1F64F}", member: () => codePointIn(rng, 0x1f600, 0x1f64f) }),
    () => ({ src: "\\x41-\\x5a", member: () => codePointIn(rng, 0x41, 0x5a) }),
    () => ({ src: "\\101", member: () => "A" }),
    () => rng.pick(perlClasses(rng)),
    () => rng.pick(posixClasses(rng)),
    () => rng.pick(unicodeClasses(rng)),
  ];
  const n = rng.between(1, 4);
  const items: ClassItem[] = [];
  for (let i = 0; i < n; i++) items.push(rng.pick(pool)());
  return items;
}

const fixed = (text: string) => () => text;

function perlClasses(rng: Random): ClassItem[] {
  return [
    { src: "\\d", member: () => rng.pick(DIGITS) },
    { src: "\\w", member: () => rng.pick(WORD) },
    { src: "\\s", member: () => rng.pick([" ", "\t", "\r", "\f"]) },
    { src: "\\D", member: () => rng.pick(["x", "-", "é", "😀"]) },
    { src: "\\W", member: () => rng.pick(["-", " ", "é", "\u212a"]) },
    { src: "\\S", member: () => rng.pick(["x", "\v", "\u00a0"]) },
  ];
}

function posixClasses(rng: Random): ClassItem[] {
  return [
    { src: "[:alpha:]", member: () => rng.pick(ASCII_LETTERS) },
    { src: "[:digit:]", member: fixed("7") },
    { src: "[:^digit:]", member: fixed("x") },
    { src: "[:word:]", member: fixed("_") },
    { src: "[:space:]", member: () => rng.pick([" ", "\v"]) },
    { src: "[:upper:]", member: fixed("Q") },
    { src: "[:lower:]", member: fixed("q") },
    { src: "[:punct:]", member: fixed("!") },
    { src: "[:xdigit:]", member: fixed("f") },
    { src: "[:^alpha:]", member: fixed("1") },
  ];
}

/** Only names Go 1.19 and current Go read the same way (see tests/go/regexp_oracle.go). */
function unicodeClasses(rng: Random): ClassItem[] {
  return [
    { src: "\\pL", member: () => rng.pick([...ASCII_LETTERS, ...GREEK, "é", "ß"]) },
    { src: "\\p{L}", member: fixed("ß") },
    { src: "\\pN", member: fixed("٣") },
    { src: "\\p{Greek}", member: () => rng.pick(GREEK) },
    { src: "\\PL", member: fixed("1") },
    { src: "\\p{^Greek}", member: fixed("a") },
    { src: "\\p{Lu}", member: fixed("É") },
    { src: "\\p{Ll}", member: fixed("σ") },
    { src: "\\P{Lu}", member: fixed("k") },
    { src: "\\pZ", member: fixed("\u00a0") },
    { src: "\\p{Zs}", member: fixed(" ") },
    { src: "\\p{Han}", member: fixed("中") },
    { src: "\\p{Latin}", member: fixed("é") },
    { src: "\\pS", member: fixed("😀") },
    { src: "\\p{So}", member: fixed("🚀") },
    { src: "\\pP", member: fixed("!") },
    { src: "\\p{Common}", member: fixed("1") },
    { src: "\\pC", member: fixed("\u0085") },
    { src: "\\p{Any}", member: fixed("x") },
  ];
}

/** Counts at Go's limits; nested, most of them are too much for Go. */
const HEAVY_COUNTS: [string, number, number][] = [
  ["{1000}", 1000, 1000],
  ["{0,1000}", 0, 1000],
  ["{999,1000}", 999, 1000],
  ["{400}", 400, 400],
  ["{1,1000}", 1, 1000],
  ["{1000,}", 1000, 1003],
  ["{100,}", 100, 103],
];

/** Bodies that match only the empty string, or may. */
const EMPTY_BODIES = [
  "(|)",
  "()",
  "(?:)",
  "\\b",
  "\\B",
  "(?:\\b|\\B)",
  "(?:^|$)",
  "(a|)",
  "(?:\\b\\B)",
  "(?:x*)",
  "(?:|x|)",
];

/** Constructs Go rejects (or that look suspicious), dropped in now and then. */
const INVALID_BITS = [
  "(",
  ")",
  "**",
  "a{2}{3}",
  "x{1001}",
  "x{2,1}",
  "[z-a]",
  "[[:foo:]]",
  "\\p{Foo}",
  "\\pX",
  "\\8",
  "\\y",
  "\\C",
  "\\1",
  "(?<=x)",
  "(?<!x)",
  "(?=x)",
  "(?!x)",
  "(?P<a-b>x)",
  "(?<>x)",
  "(?x)",
  "(?P=n)",
  "\\",
  "[abc",
  "\\x{110000}",
  "*",
  "+a",
  "[a-\\d]",
  "\\E",
  "(?i",
  "\\Z",
  "(?<n",
  "\\p{",
  "[]",
  "x**",
  "x++",
  "(?'n'x)",
];

/** Strange but valid constructs Go accepts. */
const ODD_VALID_BITS = [
  "a{,5}",
  "x{01}",
  "{",
  "}",
  "^*",
  "$+",
  "\\b*",
  "()",
  "(|a)",
  "[]a]",
  "[^]a]",
  "[a-]",
  "[-a]",
  "[\\d-z]",
  "(?)",
  "(?:)",
  "\\Q\\E",
  "[[]",
  "[a&&b]",
  "[!!]",
  "\\_",
  "\\x{1F600}",
  "\\0",
  "\\08",
  "(?i-i)",
  "[[:alpha]]",
  "(?U)",
];

class PatternGen {
  constructor(readonly rng: Random) {}

  pattern(): Piece {
    const rng = this.rng;
    let flags: Flags = { fold: false };
    let prefix = "";
    if (rng.chance(0.25)) {
      const f = rng.pick(["(?i)", "(?s)", "(?m)", "(?U)", "(?is)", "(?im)", "(?-i)", "(?sm)"]);
      prefix = f;
      flags = { fold: f.includes("i") && !f.includes("-i") };
    }
    const anchorStart = rng.chance(0.35) ? rng.pick(["^", "\\A", "(?m)^"]) : "";
    const anchorEnd = rng.chance(0.35) ? rng.pick(["$", "\\z", "(?m)$"]) : "";
    const body = this.alternation(flags, 0);
    let src = prefix + anchorStart + body.src + anchorEnd;
    if (rng.chance(0.03)) src += "\\Q" + this.quoted();
    if (rng.chance(0.1)) src = this.insert(src, rng.pick(INVALID_BITS));
    if (rng.chance(0.08)) src = this.insert(src, rng.pick(ODD_VALID_BITS));
    if (rng.chance(0.05)) src = this.mutate(src);
    return { src, sample: body.sample };
  }

  insert(src: string, bit: string): string {
    const cps = chars(src);
    const at = this.rng.int(cps.length + 1);
    return [...cps.slice(0, at), bit, ...cps.slice(at)].join("");
  }

  mutate(src: string): string {
    const cps = chars(src);
    if (cps.length === 0) return src;
    const at = this.rng.int(cps.length);
    if (this.rng.chance(0.5)) cps.splice(at, 1);
    else cps.splice(at, 0, cps[at]);
    return cps.join("");
  }

  quoted(): string {
    const n = this.rng.between(0, 5);
    let out = "";
    for (let i = 0; i < n; i++) out += this.rng.pick([...PUNCT, ...ASCII_LETTERS, "😀"]);
    return out.replaceAll("\\", "");
  }

  alternation(flags: Flags, depth: number): Piece {
    const rng = this.rng;
    const n = rng.chance(0.75) ? 1 : rng.between(2, 3);
    const branches: Piece[] = [];
    for (let i = 0; i < n; i++) {
      branches.push(rng.chance(0.05) ? { src: "", sample: fixed("") } : this.concat(flags, depth));
    }
    return {
      src: branches.map((b) => b.src).join("|"),
      sample: () => rng.pick(branches).sample(),
    };
  }

  concat(flags: Flags, depth: number): Piece {
    const rng = this.rng;
    const n = rng.between(1, depth === 0 ? 5 : 3);
    const parts: Piece[] = [];
    let current = flags;
    for (let i = 0; i < n; i++) {
      if (rng.chance(0.05)) {
        const f = rng.pick(["(?i)", "(?-i)", "(?s)", "(?U)", "(?i-s)"]);
        current = { fold: f.startsWith("(?i") };
        parts.push({ src: f, sample: fixed("") });
        continue;
      }
      parts.push(this.quantified(current, depth));
    }
    return {
      src: parts.map((p) => p.src).join(""),
      sample: () => parts.map((p) => p.sample()).join(""),
    };
  }

  quantified(flags: Flags, depth: number): Piece {
    const rng = this.rng;
    const atom = this.atom(flags, depth);
    if (!rng.chance(0.3)) return atom;
    const lazy = rng.chance(0.2) ? "?" : "";
    const [op, lo, hi] = rng.pick<[string, number, number]>([
      ["*", 0, 3],
      ["+", 1, 3],
      ["?", 0, 1],
      ["{2}", 2, 2],
      ["{1,3}", 1, 3],
      ["{0,2}", 0, 2],
      ["{2,}", 2, 4],
      ["{16}", 16, 16],
      ["{0}", 0, 0],
      ...(rng.chance(0.15) ? HEAVY_COUNTS : []),
    ]);
    return {
      src: atom.src + op + lazy,
      sample: () => {
        let out = "";
        const k = hi > 40 && rng.chance(0.7)
          ? rng.pick([lo, Math.min(hi, lo + 3)])
          : rng.between(lo, hi);
        // Nested large counts would make huge samples: a sample need not match, so stop.
        for (let i = 0; i < k && out.length < 4000; i++) out += atom.sample();
        return out;
      },
    };
  }

  atom(flags: Flags, depth: number): Piece {
    const rng = this.rng;
    const roll = rng.int(100);
    if (roll < 22) {
      const c = rng.pick(ANY_CHAR);
      return { src: escapeOutside(c), sample: literalSample(rng, c, flags) };
    }
    if (roll < 40) {
      const word = rng.pick(RULE_WORDS);
      const src = rng.chance(0.3) ? word : chars(word).map(escapeOutside).join("");
      return { src, sample: literalSample(rng, word, flags) };
    }
    if (roll < 46) return { src: ".", sample: () => rng.pick(ANY_CHAR) };
    if (roll < 60) return this.charClass(flags);
    if (roll < 67) {
      const item = rng.pick([...perlClasses(rng), ...unicodeClasses(rng)]);
      return { src: item.src, sample: item.member };
    }
    if (roll < 72) {
      const [src, text] = rng.pick<[string, string]>([
        ["\\x41", "A"],
        ["\\x{E9}", "é"],
        ["\\x{1F600}", "😀"],
        ["\\101", "A"],
        ["\\t", "\t"],
        ["\\f", "\f"],
        ["\\r", "\r"],
        ["\\v", "\v"],
        ["\\a", "\u0007"],
        ["\\x{212A}", "\u212a"],
        ["\\x{17F}", "\u017f"],
        ["\\-", "-"],
        ["\\ ", " "],
      ]);
      return { src, sample: literalSample(rng, text, flags) };
    }
    if (roll < 77) {
      const anchor = rng.pick(["^", "$", "\\A", "\\z", "\\b", "\\B"]);
      return { src: anchor, sample: fixed(anchor === "\\b" ? " " : "") };
    }
    if (roll < 80) {
      const text = this.quoted();
      return { src: `\\Q${text}\\E`, sample: literalSample(rng, text, flags) };
    }
    if (roll < 84) return this.hostile(flags);
    if (depth >= 3) return { src: "x", sample: literalSample(rng, "x", flags) };
    return this.group(flags, depth);
  }

  /** Shapes that once stalled or crashed engines: empty bodies, big alternations, astral. */
  hostile(flags: Flags): Piece {
    const rng = this.rng;
    switch (rng.int(5)) {
      case 0: {
        const src = rng.pick(EMPTY_BODIES);
        return { src, sample: fixed(rng.chance(0.5) ? " " : "") };
      }
      case 1: {
        const words = Array.from({ length: rng.between(3, 40) }, () => rng.pick(RULE_WORDS));
        if (rng.chance(0.5)) words.push(...words.slice(0, 5)); // duplicates Go factors away
        return {
          src: `(?:${words.map((w) => chars(w).map(escapeOutside).join("")).join("|")})`,
          sample: () => literalSample(rng, rng.pick(words), flags)(),
        };
      }
      case 2: {
        const letters = chars("abcde");
        return { src: `(?:${letters.join("|")})`, sample: () => rng.pick(letters) };
      }
      case 3: {
        const [src, member] = rng.pick<[string, string]>([
          ["\\x{10400}", "\u{10400}"],
          ["\\x{10428}", "\u{10428}"],
          ["\\x{1E900}", "\u{1E900}"],
          ["[\\x{10000}-\\x{10FFFF}]", "\u{1F680}"],
          ["[^\\x{0}-\\x{FFFF}]", "\u{10FFFF}"],
          ["\\p{Adlam}", "\u{1E922}"],
          ["\\p{Deseret}", "\u{10428}"],
          ["\\p{Old_Italic}", "\u{10300}"],
          ["[\\x{1F600}-\\x{1F64F}a]", "\u{1F64F}"],
        ]);
        return { src, sample: literalSample(rng, member, flags) };
      }
      default: {
        const item = rng.pick(unicodeClasses(rng));
        return { src: item.src, sample: item.member };
      }
    }
  }

  charClass(flags: Flags): Piece {
    const rng = this.rng;
    const items = classItems(rng);
    const negated = rng.chance(0.25);
    const src = `[${negated ? "^" : ""}${items.map((i) => i.src).join("")}]`;
    const sample = negated
      ? () => rng.pick(ANY_CHAR)
      : () => literalSample(rng, rng.pick(items).member(), flags)();
    return { src, sample };
  }

  group(flags: Flags, depth: number): Piece {
    const rng = this.rng;
    const kind = rng.int(8);
    let open = "(";
    let inner = flags;
    if (kind === 1) open = "(?:";
    else if (kind === 2) open = `(?P<${rng.pick(["n", "name", "x1", "_"])}>`;
    else if (kind === 3) open = `(?<${rng.pick(["n", "grp", "a_b"])}>`;
    else if (kind >= 4) {
      const f = rng.pick(["i", "-i", "s", "m", "U", "i-s", "is", "-s"]);
      open = `(?${f}:`;
      if (f.startsWith("i")) inner = { fold: true };
      if (f.startsWith("-i")) inner = { fold: false };
    }
    const body = this.alternation(inner, depth + 1);
    return { src: `${open}${body.src})`, sample: body.sample };
  }
}

// --- Inputs -------------------------------------------------------------------------------

function mutateText(rng: Random, text: string): string {
  const cps = chars(text);
  if (cps.length === 0) return rng.pick(ANY_CHAR);
  const at = rng.int(cps.length);
  switch (rng.int(4)) {
    case 0:
      cps.splice(at, 1);
      break;
    case 1:
      cps.splice(at, 0, rng.pick(ANY_CHAR));
      break;
    case 2:
      cps[at] = rng.pick(ANY_CHAR);
      break;
    default:
      cps[at] = rng.pick(foldVariants(cps[at]));
  }
  return cps.join("");
}

/** Lines for one pattern: its samples inside rule lines, mutated samples, and noise. */
function inputsFor(rng: Random, piece: Piece): string[] {
  const sample = () => {
    try {
      return piece.sample();
    } catch {
      return "";
    }
  };
  const lines = [
    `${ruleLine(rng)} ${sample()}`,
    rng.chance(0.5) ? sample() + " " + ruleLine(rng) : sample(),
    sample(),
    mutateText(rng, sample()),
    rng.chance(0.5) ? ruleLine(rng) : noiseLine(rng),
    rng.chance(0.5) ? noiseLine(rng) + sample() + noiseLine(rng) : mutateText(rng, sample()),
  ];
  // Rule lines never hold a newline.
  return lines.map((line) => line.replaceAll("\n", " "));
}

// --- Minimizing a failure -----------------------------------------------------------------

type Kind =
  | "go accepts, ours rejects"
  | "go rejects, ours accepts"
  | "message"
  | "match"
  | "hung"
  | "threw";

function kindOf(go: OracleVerdict, ours: EngineOutcome, input?: number): Kind | undefined {
  if (go.divergence !== null) return undefined;
  if (ours.kind === "hung" || ours.kind === "threw") return ours.kind;
  if (go.error === null && ours.kind === "rejected") return "go accepts, ours rejects";
  if (go.error !== null && ours.kind === "accepted") return "go rejects, ours accepts";
  if (go.error !== null && ours.kind === "rejected") {
    return ours.message === go.error ? undefined : "message";
  }
  if (input === undefined || go.error !== null || ours.kind !== "accepted") return undefined;
  if (go.unstable[input]) return undefined;
  return go.matches[input] === ours.matches[input] ? undefined : "match";
}

/**
 * Smaller variants of `text`: chunks removed (largest first), a `(`…`)` pair removed
 * with its content kept, and counts like `{16}` made smaller.
 */
function shrinkCandidates(text: string): string[] {
  const cps = chars(text);
  const out = new Set<string>();
  for (let size = Math.floor(cps.length / 2); size >= 1; size = Math.floor(size / 2)) {
    for (let at = 0; at + size <= cps.length; at += size) {
      out.add([...cps.slice(0, at), ...cps.slice(at + size)].join(""));
    }
  }
  for (let i = 0; i < cps.length && out.size < 400; i++) {
    if (cps[i] !== "(") continue;
    for (let j = i + 1; j < cps.length; j++) {
      if (cps[j] === ")") out.add(cps.filter((_, k) => k !== i && k !== j).join(""));
    }
  }
  for (const m of text.matchAll(/\d+/g)) {
    const n = Number(m[0]);
    for (const smaller of [0, 1, 2, Math.floor(n / 2)]) {
      if (smaller < n) {
        out.add(text.slice(0, m.index) + smaller + text.slice(m.index + m[0].length));
      }
    }
  }
  out.delete(text);
  return [...out].sort((a, b) => a.length - b.length).slice(0, 400);
}

/** Shrinks a failing pattern (and line) while it fails the same way. */
async function minimize(engine: Engine, failing: Discrepancy): Promise<Discrepancy> {
  let pattern = failing.pattern;
  let input = failing.input;
  const verdictOf = async (cases: OracleCase[]) => {
    const [go, ours] = await Promise.all([askGo(cases), engine.run(cases, 2_000)]);
    return cases.map((_, i) => kindOf(go[i], ours[i], input === undefined ? undefined : 0));
  };
  const [want] = await verdictOf([{ pattern, inputs: input === undefined ? [] : [input] }]);
  if (want === undefined) return failing;
  for (let round = 0; round < 60; round++) {
    let progressed = false;
    const patterns = shrinkCandidates(pattern);
    const kinds = await verdictOf(
      patterns.map((p) => ({ pattern: p, inputs: input === undefined ? [] : [input] })),
    );
    const p = kinds.indexOf(want);
    if (p >= 0) {
      pattern = patterns[p];
      progressed = true;
    }
    if (input !== undefined) {
      const inputs = shrinkCandidates(input);
      const inputKinds = await verdictOf(inputs.map((i) => ({ pattern, inputs: [i] })));
      const q = inputKinds.indexOf(want);
      if (q >= 0) {
        input = inputs[q];
        progressed = true;
      }
    }
    if (!progressed) break;
  }
  const [go] = await askGo([{ pattern, inputs: input === undefined ? [] : [input] }]);
  const [ours] = await engine.run([{ pattern, inputs: input === undefined ? [] : [input] }]);
  const goSays = go.error ?? (input === undefined ? "accepted" : String(go.matches[0]));
  const oursSays = ours.kind === "rejected"
    ? ours.message
    : ours.kind === "accepted"
    ? (input === undefined ? "accepted" : String(ours.matches[0]))
    : ours.kind;
  return input === undefined
    ? { pattern, go: goSays, ours: oursSays }
    : { pattern, input, go: goSays, ours: oursSays };
}

// --- The test -----------------------------------------------------------------------------

function seedFromEnv(): number {
  const text = Deno.env.get("FUZZ_SEED");
  if (text !== undefined && text !== "") {
    const seed = Number(text);
    if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${text}`);
    return seed >>> 0;
  }
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Byte sequences that are not UTF-8 (or are odd): what iptables comments can hold. */
const BAD_BYTES: number[][] = [
  [0xff],
  [0x80],
  [0xc0, 0xaf],
  [0xe0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf0, 0x9f, 0x98],
  [0xf4, 0x90, 0x80, 0x80],
  [0xef, 0xbb, 0xbf],
  [0x00],
  [0xc3],
];

/** `text` as UTF-8 with a few odd byte sequences spliced in (never `\n`). */
function corrupt(rng: Random, text: string, times: number): Uint8Array {
  const out = [...new TextEncoder().encode(text)];
  for (let i = 0; i < times; i++) out.splice(rng.int(out.length + 1), 0, ...rng.pick(BAD_BYTES));
  return Uint8Array.from(out);
}

/** Generates the cases of one run from its seed. */
function generateCases(seed: number, patterns: number): OracleCase[] {
  const rng = new Random(seed);
  const gen = new PatternGen(rng);
  const cases: OracleCase[] = [];
  for (let i = 0; i < patterns; i++) {
    const piece = gen.pattern();
    const inputs = inputsFor(rng, piece);
    let c: OracleCase = { pattern: piece.src, inputs };
    if (rng.chance(0.15)) {
      // Rules as raw bytes: invalid UTF-8 is one U+FFFD per byte to Go.
      const inputBytes = inputs.map((line) => corrupt(rng, line, rng.between(0, 2)));
      c = { pattern: piece.src, inputs: inputBytes.map(decodeGoUtf8), inputBytes };
    }
    if (rng.chance(0.04)) {
      // A pattern line with odd bytes: a BOM or NUL is a literal, invalid UTF-8 an error.
      const patternBytes = corrupt(rng, piece.src, 1);
      c = { ...c, pattern: decodeGoUtf8(patternBytes), patternBytes };
    }
    cases.push(c);
  }
  return cases;
}

Deno.test({
  name: "Go regexp fuzz: generated patterns and lines agree with Go",
  ...requires({ commands: ["go"] }),
  async fn() {
    const seed = seedFromEnv();
    const patterns = Number(Deno.env.get("FUZZ_PATTERNS") ?? "2400");
    if (!Number.isInteger(patterns) || patterns < 1) {
      throw new Error(`FUZZ_PATTERNS must be a positive integer`);
    }
    const cases = generateCases(seed, patterns);
    const verdicts = await askGo(cases);
    const engine = await startEngine();
    try {
      const outcomes = await engine.run(cases);
      const result = compare(cases, verdicts, outcomes);
      const rejected = verdicts.filter((v) => v.error !== null).length;
      const stats = `seed ${seed}: ${cases.length} patterns (${rejected} rejected by Go, ` +
        `${result.skippedCases} skipped), ${result.comparedPairs} pattern/line pairs ` +
        `(${result.goMatches} matches, ${result.skippedPairs} skipped)`;
      console.log(stats);
      if (result.discrepancies.length > 0) {
        const firsts: Discrepancy[] = [];
        const seen = new Set<string>();
        for (const d of result.discrepancies) {
          if (seen.has(d.pattern)) continue;
          seen.add(d.pattern);
          firsts.push(d);
          if (firsts.length === 5) break;
        }
        const minimized: Discrepancy[] = [];
        for (const d of firsts) {
          // A pattern that hangs us is shown as generated: shrinking it would hang again.
          minimized.push(d.ours.startsWith("no answer") ? d : await minimize(engine, d));
        }
        throw new Error(
          `${result.discrepancies.length} difference(s) from Go (replay with FUZZ_SEED=${seed}).\n` +
            `${stats}\nMinimized:\n${describe(minimized)}\nAs generated:\n` +
            describe(result.discrepancies, 15),
        );
      }
      // The generator itself must stay useful: enough pairs, a mix of outcomes.
      if (result.comparedPairs < 10_000 && patterns >= 2400) {
        throw new Error(`only ${result.comparedPairs} pairs compared; ${stats}`);
      }
      const share = result.goMatches / result.comparedPairs;
      if (share < 0.2 || share > 0.8) throw new Error(`unbalanced matches: ${stats}`);
      if (rejected < cases.length * 0.03) throw new Error(`too few rejected patterns: ${stats}`);
    } finally {
      engine.close();
    }
  },
});
