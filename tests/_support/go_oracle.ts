/**
 * Go's own `regexp` package as a test oracle: `tests/go/regexp_oracle.go` is built once
 * per test run into a temporary directory and answers batches of (pattern, inputs) with
 * Go's verdicts. Tests that use it need `go` on PATH (`requires({ commands: ["go"] })`).
 *
 * @module
 */

import { z } from "zod";

/** One pattern and the lines to match it against. */
export interface OracleCase {
  readonly pattern: string;
  readonly inputs: readonly string[];
  /** The pattern as raw bytes (not valid UTF-8, say); then `pattern` is only its label. */
  readonly patternBytes?: Uint8Array;
  /** The inputs as raw bytes; then `inputs` are only their labels. */
  readonly inputBytes?: readonly Uint8Array[];
}

/** Go's verdict on one {@linkcode OracleCase}. */
export interface OracleVerdict {
  /** Go's `err.Error()` for a rejected pattern, else `null`. */
  readonly error: string | null;
  /** `MatchString` per input, in order; empty when the pattern is rejected. */
  readonly matches: readonly boolean[];
  /**
   * Set when current Go (what upstream ships) and the Go 1.19 the oracle runs disagree
   * on this pattern in a way the oracle cannot emulate (`\p` names Go 1.25 added).
   */
  readonly divergence: string | null;
  /** Per input: Go 1.19's Unicode 13 tables may answer differently from current Go's. */
  readonly unstable: readonly boolean[];
}

const responseSchema = z.object({
  results: z.array(z.object({
    error: z.string().nullable(),
    matches: z.array(z.boolean()),
    divergence: z.string().nullable(),
    unstable: z.array(z.boolean()),
  })),
  decoded: z.array(z.array(z.number())),
  lines: z.array(z.array(z.string())),
  lineErrors: z.array(z.string()),
});

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** A request as the oracle reads it: raw bytes travel as base64. */
function wireCase(c: OracleCase): Record<string, unknown> {
  return {
    pattern: c.pattern,
    inputs: c.inputs,
    ...(c.patternBytes ? { patternBytes: toBase64(c.patternBytes) } : {}),
    ...(c.inputBytes ? { inputBytes: c.inputBytes.map(toBase64) } : {}),
  };
}

const oracleSource = new URL("../go/regexp_oracle.go", import.meta.url);

let built: Promise<string> | undefined;

/** Builds the oracle on first use; later calls reuse the binary. */
function oracleBinary(): Promise<string> {
  built ??= buildOracle();
  return built;
}

async function buildOracle(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "aim-go-oracle-" });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  });
  const binary = `${dir}/regexp_oracle`;
  const { code, stderr } = await new Deno.Command("go", {
    args: ["build", "-o", binary, oracleSource.pathname],
    cwd: dir,
    env: {
      GOCACHE: `${dir}/cache`,
      GOPATH: `${dir}/gopath`,
      HOME: dir,
      GO111MODULE: "off",
      GOFLAGS: "",
      GOTOOLCHAIN: "local",
    },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`go build of the regexp oracle failed:\n${new TextDecoder().decode(stderr)}`);
  }
  return binary;
}

/**
 * Asks Go about every case in one process. Throws when the oracle fails or answers
 * something malformed, so a broken oracle can never pass a test.
 */
export async function askGo(cases: readonly OracleCase[]): Promise<OracleVerdict[]> {
  const { results } = await callOracle({ cases: cases.map(wireCase) });
  if (results.length !== cases.length) {
    throw new Error(`regexp oracle answered ${results.length} of ${cases.length} cases`);
  }
  results.forEach((verdict, i) => {
    const expected = verdict.error === null ? cases[i].inputs.length : 0;
    if (verdict.matches.length !== expected || verdict.unstable.length !== expected) {
      throw new Error(`regexp oracle answered a wrong number of inputs for case ${i}`);
    }
  });
  return results;
}

/** The code points Go's `[]rune(string(b))` gives for each byte string. */
export async function askGoDecode(strings: readonly Uint8Array[]): Promise<number[][]> {
  const { decoded } = await callOracle({ cases: [], decode: strings.map(toBase64) });
  if (decoded.length !== strings.length) throw new Error("regexp oracle: wrong decode count");
  return decoded;
}

/**
 * The lines Go's `bufio.Scanner` (ScanLines) gives for each file's bytes, and the error
 * that stopped the scan ("" when none).
 */
export async function askGoLines(
  files: readonly Uint8Array[],
): Promise<{ lines: Uint8Array[]; error: string }[]> {
  const { lines, lineErrors } = await callOracle({ cases: [], lines: files.map(toBase64) });
  if (lines.length !== files.length) throw new Error("regexp oracle: wrong lines count");
  return lines.map((file, i) => ({ lines: file.map(fromBase64), error: lineErrors[i] }));
}

async function callOracle(request: unknown): Promise<z.infer<typeof responseSchema>> {
  const binary = await oracleBinary();
  const child = new Deno.Command(binary, {
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const body = new TextEncoder().encode(JSON.stringify(request));
  const writer = child.stdin.getWriter();
  await writer.write(body);
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(`regexp oracle exited with ${code}:\n${new TextDecoder().decode(stderr)}`);
  }
  return responseSchema.parse(JSON.parse(new TextDecoder().decode(stdout)));
}

// ---------------------------------------------------------------------------------------
// The engine under test, run in a worker so that a pattern that hangs it fails the test
// (the worker is terminated) instead of hanging the whole test run.

/** What our engine made of one {@linkcode OracleCase}. */
export type EngineOutcome =
  | { readonly kind: "rejected"; readonly message: string }
  | { readonly kind: "accepted"; readonly matches: readonly boolean[] }
  | { readonly kind: "threw"; readonly error: string }
  | { readonly kind: "hung"; readonly afterMs: number };

const outcomeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("rejected"), message: z.string() }),
  z.object({ kind: z.literal("accepted"), matches: z.array(z.boolean()) }),
  z.object({ kind: z.literal("threw"), error: z.string() }),
]);

const workerMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready") }),
  z.object({ type: z.literal("start"), index: z.number() }),
  z.object({ type: z.literal("outcome"), index: z.number(), outcome: outcomeSchema }),
  z.object({ type: z.literal("done") }),
]);
type WorkerMessage = z.infer<typeof workerMessageSchema>;

const engineModule = new URL("../../src/patterns/regexp.ts", import.meta.url).href;

const decoderModule = new URL("../../src/patterns/go_utf8.ts", import.meta.url).href;

const workerSource = `
import { compileGoPatternBytes, compileGoRegexp } from ${JSON.stringify(engineModule)};
import { decodeGoUtf8 } from ${JSON.stringify(decoderModule)};
function outcome(c) {
  try {
    const compiled = c.patternBytes
      ? compileGoPatternBytes(c.patternBytes)
      : compileGoRegexp(c.pattern);
    if (!compiled.ok) return { kind: "rejected", message: compiled.message };
    const inputs = c.inputBytes ? c.inputBytes.map(decodeGoUtf8) : c.inputs;
    return { kind: "accepted", matches: inputs.map((line) => compiled.regexp.test(line)) };
  } catch (error) {
    return { kind: "threw", error: String(error && error.stack || error) };
  }
}
self.onmessage = (event) => {
  event.data.cases.forEach((c, index) => {
    self.postMessage({ type: "start", index });
    self.postMessage({ type: "outcome", index, outcome: outcome(c) });
  });
  self.postMessage({ type: "done" });
};
self.postMessage({ type: "ready" });
`;

/** A worker running `compileGoRegexp`; close it when done. */
export interface Engine {
  /**
   * Runs every case; a case that makes no progress for `caseLimitMs` is recorded as
   * `hung`, the worker is replaced, and the run goes on with the next case.
   */
  run(cases: readonly OracleCase[], caseLimitMs?: number): Promise<EngineOutcome[]>;
  close(): void;
}

/** Starts the engine in a worker and waits until its module has loaded. */
export async function startEngine(): Promise<Engine> {
  const url = URL.createObjectURL(new Blob([workerSource], { type: "application/javascript" }));
  let worker = await spawnWorker(url);
  return {
    async run(cases, caseLimitMs = 5_000) {
      const outcomes: EngineOutcome[] = [];
      while (outcomes.length < cases.length) {
        const rest = cases.slice(outcomes.length);
        const batch = await runBatch(worker, rest, caseLimitMs);
        outcomes.push(...batch.outcomes);
        if (batch.hung) {
          outcomes.push({ kind: "hung", afterMs: caseLimitMs });
          worker.terminate();
          worker = await spawnWorker(url);
        }
      }
      return outcomes;
    },
    close() {
      worker.terminate();
      URL.revokeObjectURL(url);
    },
  };
}

function spawnWorker(url: string): Promise<Worker> {
  const worker = new Worker(url, { type: "module" });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error("the engine worker did not start within 60 s"));
    }, 60_000);
    worker.onerror = (event) => {
      event.preventDefault();
      clearTimeout(timer);
      worker.terminate();
      reject(new Error(`the engine worker failed to load ${engineModule}: ${event.message}`));
    };
    worker.onmessage = (event) => {
      const message = workerMessageSchema.parse(event.data);
      clearTimeout(timer);
      if (message.type === "ready") resolve(worker);
      else reject(new Error(`unexpected first message from the engine worker: ${message.type}`));
    };
  });
}

/** Runs cases until all are done or one stalls; returns the outcomes before the stall. */
function runBatch(
  worker: Worker,
  cases: readonly OracleCase[],
  caseLimitMs: number,
): Promise<{ outcomes: EngineOutcome[]; hung: boolean }> {
  return new Promise((resolve, reject) => {
    const outcomes: EngineOutcome[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => resolve({ outcomes, hung: true }), caseLimitMs);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      clearTimeout(timer);
      reject(new Error(`the engine worker crashed: ${event.message}`));
    };
    worker.onmessage = (event) => {
      const message: WorkerMessage = workerMessageSchema.parse(event.data);
      if (message.type === "start") {
        arm();
      } else if (message.type === "outcome") {
        outcomes.push(message.outcome);
      } else if (message.type === "done") {
        clearTimeout(timer);
        resolve({ outcomes, hung: false });
      }
    };
    arm();
    worker.postMessage({ cases });
  });
}

// ---------------------------------------------------------------------------------------
// Comparing the engine with Go.

/** One way our engine and Go disagree. `input` is absent for compile-time differences. */
export interface Discrepancy {
  readonly pattern: string;
  readonly input?: string;
  readonly go: string;
  readonly ours: string;
}

/** The outcome of comparing a batch. */
export interface Comparison {
  readonly discrepancies: Discrepancy[];
  /** Pattern/line pairs whose match results were compared. */
  readonly comparedPairs: number;
  /** Of those, how many Go said match. */
  readonly goMatches: number;
  /** Cases skipped because Go 1.19 cannot stand in for current Go (see the oracle). */
  readonly skippedCases: number;
  readonly skippedPairs: number;
}

/**
 * How strictly rejection messages are compared: the whole `err.Error()` text, or only
 * the `error parsing regexp: <code>` part before the offending expression.
 */
export type MessageCheck = "exact" | "code";

/** The `error parsing regexp: <code>` part of a Go error message. */
export function errorCode(message: string): string {
  const at = message.indexOf(": `");
  return at < 0 ? message : message.slice(0, at);
}

/** Lists every difference between Go's verdicts and our engine's outcomes. */
export function compare(
  cases: readonly OracleCase[],
  verdicts: readonly OracleVerdict[],
  outcomes: readonly EngineOutcome[],
  messages: MessageCheck = "exact",
): Comparison {
  const discrepancies: Discrepancy[] = [];
  let comparedPairs = 0;
  let goMatches = 0;
  let skippedCases = 0;
  let skippedPairs = 0;
  cases.forEach(({ pattern, inputs }, i) => {
    const go = verdicts[i];
    const ours = outcomes[i];
    if (go.divergence !== null) {
      skippedCases++;
      return;
    }
    const goSays = go.error ?? "accepted";
    if (ours.kind === "hung") {
      discrepancies.push({ pattern, go: goSays, ours: `no answer within ${ours.afterMs} ms` });
    } else if (ours.kind === "threw") {
      discrepancies.push({ pattern, go: goSays, ours: `threw ${ours.error.split("\n")[0]}` });
    } else if (go.error !== null) {
      if (ours.kind === "accepted") {
        discrepancies.push({ pattern, go: go.error, ours: "accepted" });
      } else if (
        messages === "exact"
          ? ours.message !== go.error
          : errorCode(ours.message) !== errorCode(go.error)
      ) {
        discrepancies.push({ pattern, go: go.error, ours: ours.message });
      }
    } else if (ours.kind === "rejected") {
      discrepancies.push({ pattern, go: "accepted", ours: ours.message });
    } else {
      inputs.forEach((input, j) => {
        if (go.unstable[j]) {
          skippedPairs++;
          return;
        }
        comparedPairs++;
        if (go.matches[j]) goMatches++;
        if (ours.matches[j] !== go.matches[j]) {
          discrepancies.push({
            pattern,
            input,
            go: go.matches[j] ? "match" : "no match",
            ours: ours.matches[j] ? "match" : "no match",
          });
        }
      });
    }
  });
  return { discrepancies, comparedPairs, goMatches, skippedCases, skippedPairs };
}

/** A string as a JSON literal, shortened in the middle when long. */
export function show(text: string, max = 120): string {
  const quoted = JSON.stringify(text);
  if (quoted.length <= max) return quoted;
  const half = Math.floor((max - 20) / 2);
  return `${quoted.slice(0, half)}…(${text.length} chars)…${quoted.slice(-half)}`;
}

/** Text shortened in the middle when long. */
function clip(text: string, max = 160): string {
  if (text.length <= max) return text;
  const half = Math.floor((max - 20) / 2);
  return `${text.slice(0, half)}…(${text.length} chars)…${text.slice(-half)}`;
}

/** One line per discrepancy, at most `limit` of them, for a failure message. */
export function describe(discrepancies: readonly Discrepancy[], limit = 40): string {
  const lines = discrepancies.slice(0, limit).map((d) => {
    const input = d.input === undefined ? "" : ` on ${show(d.input)}`;
    return `  pattern ${show(d.pattern)}${input}: Go ${clip(d.go)} | ours ${clip(d.ours)}`;
  });
  if (discrepancies.length > limit) lines.push(`  … and ${discrepancies.length - limit} more`);
  return lines.join("\n");
}
