import { z } from "zod";
import { runCommand } from "../iptables/runner.ts";

/** The result of reading the counter: its value, or one line saying why not. */
export type CounterRead = { ok: true; value: bigint } | { ok: false; message: string };

/** How to run bpftool. */
export interface BpftoolOptions {
  /** The bpftool binary; found on PATH by default. */
  bpftool?: string;
  /** bpftool is killed after this long; 5 s by default. */
  timeoutMs?: number;
  /** Aborting kills bpftool (shutdown). */
  signal?: AbortSignal;
}

const U64_BYTES = 8;
const MAX_U64 = (1n << 64n) - 1n;

/** A byte as bpftool prints it in JSON: `"0x2a"` (older versions: `"2a"`). */
const HexByte = z.string().regex(/^(0x)?[0-9a-fA-F]{1,2}$/);

/** A number as the BTF dumper prints it; a string form is accepted for large values. */
const FormattedNumber = z.union([z.number(), z.string().regex(/^\d+$/)]);

/**
 * The formatted value is checked only when it is used: with the raw bytes present, a
 * BTF type we do not know (a struct, say) must not make the output unreadable.
 */
const LookupOutput = z.object({
  key: z.array(HexByte).optional(),
  value: z.array(HexByte).optional(),
  formatted: z.object({ value: z.unknown() }).optional(),
});

/** bpftool's JSON error: `{"error":"bpf obj get (/x): No such file or directory"}`. */
const ErrorOutput = z.object({ error: z.string() });

/** The u64 little-endian value of the bytes `["0x05","0x00",...]`. */
function littleEndian(bytes: readonly string[]): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) {
    value = (value << 8n) | BigInt(Number.parseInt(bytes[i].replace(/^0x/, ""), 16));
  }
  return value;
}

function formattedValue(formatted: unknown): bigint {
  const parsed = FormattedNumber.safeParse(formatted);
  if (!parsed.success) {
    throw new Error(`the BTF-formatted value ${JSON.stringify(formatted)} is not a number`);
  }
  const value = parsed.data;
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0) {
      throw new Error(`the BTF-formatted value ${value} is not a counter`);
    }
    if (!Number.isSafeInteger(value)) {
      throw new Error(`the BTF-formatted value ${value} is too large to read exactly`);
    }
  }
  const result = BigInt(value);
  if (result > MAX_U64) throw new Error(`the BTF-formatted value ${value} is not a u64`);
  return result;
}

function snippet(text: string): string {
  const flat = text.trim().replace(/\s+/g, " ");
  return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat;
}

/**
 * The counter in the output of `bpftool -j map lookup ... key 0 0 0 0`: the raw value
 * bytes (exact for any u64) when present, else the BTF-formatted number. Throws an
 * Error with one clear line for anything else.
 */
export function parseLookupOutput(stdout: string): bigint {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new Error(`bpftool printed something that is not JSON: "${snippet(stdout)}"`);
  }
  if (json === null) throw new Error("bpftool found no entry for key 0");
  const parsed = LookupOutput.safeParse(json);
  if (!parsed.success) {
    throw new Error(`unexpected bpftool output: ${snippet(stdout)}`);
  }
  const { value, formatted } = parsed.data;
  if (value !== undefined) {
    if (value.length !== U64_BYTES) {
      throw new Error(`the map value has ${value.length} bytes; expected a u64 (8 bytes)`);
    }
    return littleEndian(value);
  }
  if (formatted !== undefined) return formattedValue(formatted.value);
  throw new Error(`bpftool printed no value for key 0: ${snippet(stdout)}`);
}

/** bpftool's own error text, from its JSON on stdout or from stderr. */
function bpftoolError(stdout: string, stderr: string): string {
  for (const text of [stdout, stderr]) {
    try {
      const parsed = ErrorOutput.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data.error;
    } catch {
      // not JSON
    }
  }
  const text = `${stderr.trim()} ${stdout.trim()}`.trim();
  return text === "" ? "no output" : snippet(text.split("\n")[0]);
}

function explain(mapPath: string, detail: string): string {
  if (/No such file or directory/i.test(detail)) {
    return `BPF map ${mapPath} does not exist (bpftool: ${detail})`;
  }
  if (/Operation not permitted|Permission denied/i.test(detail)) {
    return `no permission to read BPF map ${mapPath}: needs root or CAP_BPF ` +
      `(bpftool: ${detail})`;
  }
  return `cannot read BPF map ${mapPath}: ${detail}`;
}

/** The part of `bpftool -j map show` that says what kind of map it is. */
const MapShowOutput = z.object({
  type: z.string(),
  bytes_key: z.number().int(),
  bytes_value: z.number().int(),
});

/** What the counter map must be: an array with u32 keys and u64 values. */
const EXPECTED_MAP = { type: "array", key: 4, value: U64_BYTES } as const;

/**
 * Says what is wrong with the map bpftool described, or nothing when it is the
 * expected array of u64 counters. Throws one clear line for output it cannot read.
 */
export function checkMapShape(stdout: string): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new Error(`bpftool printed something that is not JSON: "${snippet(stdout)}"`);
  }
  const parsed = MapShowOutput.safeParse(json);
  if (!parsed.success) throw new Error(`unexpected bpftool map show output: ${snippet(stdout)}`);
  const { type, bytes_key: key, bytes_value: value } = parsed.data;
  if (type === EXPECTED_MAP.type && key === EXPECTED_MAP.key && value === EXPECTED_MAP.value) {
    return undefined;
  }
  return `is ${/^[aeiou]/.test(type) ? "an" : "a"} ${type} map with ${key}-byte keys and ` +
    `${value}-byte values; expected an array map with 4-byte keys and 8-byte (u64) values`;
}

/** Runs bpftool with `args`; its stdout, or the one line saying why not. */
async function bpftool(
  mapPath: string,
  command: string,
  args: string[],
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ ok: true; stdout: string } | { ok: false; message: string }> {
  const outcome = await runCommand(command, args, {
    timeoutMs,
    maxOutputBytes: MAX_BPFTOOL_OUTPUT_BYTES,
    signal,
  });
  const failed = (message: string) => ({ ok: false as const, message });
  switch (outcome.kind) {
    case "not-found":
      return failed(`cannot read BPF map ${mapPath}: ${command} not found`);
    case "cannot-start":
      return failed(`cannot read BPF map ${mapPath}: ${outcome.message}`);
    case "timeout":
      return failed(
        `cannot read BPF map ${mapPath}: ${command} gave no answer within ${timeoutMs / 1000} s`,
      );
    case "too-large":
      return failed(
        `cannot read BPF map ${mapPath}: ${command} printed more than ` +
          `${outcome.limitBytes / 1024} KiB`,
      );
    case "aborted":
      return failed(`cannot read BPF map ${mapPath}: stopped, shutting down`);
    case "exited":
      if (outcome.code !== 0) {
        return failed(explain(mapPath, bpftoolError(outcome.stdout, outcome.stderr)));
      }
      return { ok: true, stdout: outcome.stdout };
  }
}

/** bpftool's answer for one map is a few hundred bytes; more is not bpftool. */
const MAX_BPFTOOL_OUTPUT_BYTES = 64 * 1024;

/**
 * Reads key 0 of the pinned array map at `mapPath`, a u64 counter of blocked iptables
 * writes, with bpftool: first what kind of map it is (an array of u64 values, else one
 * line saying what it is instead), then the value. Every failure (missing map, missing
 * bpftool, no permission, unexpected output, a hung bpftool) comes back as one line,
 * never as an exception.
 */
export async function readCounter(
  mapPath: string,
  options: BpftoolOptions = {},
): Promise<CounterRead> {
  const command = options.bpftool ?? "bpftool";
  const timeoutMs = options.timeoutMs ?? 5_000;
  const shown = await bpftool(
    mapPath,
    command,
    ["-j", "map", "show", "pinned", mapPath],
    timeoutMs,
    options.signal,
  );
  if (!shown.ok) return shown;
  try {
    const wrong = checkMapShape(shown.stdout);
    if (wrong !== undefined) return { ok: false, message: `BPF map ${mapPath} ${wrong}` };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, message: `cannot read BPF map ${mapPath}: ${reason}` };
  }
  const looked = await bpftool(
    mapPath,
    command,
    ["-j", "map", "lookup", "pinned", mapPath, "key", "0", "0", "0", "0"],
    timeoutMs,
    options.signal,
  );
  if (!looked.ok) return looked;
  try {
    return { ok: true, value: parseLookupOutput(looked.stdout) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, message: `cannot read BPF map ${mapPath}: ${reason}` };
  }
}

/** How the counter changed since the previous check. */
export type CounterChange =
  /** The first successful read: the value every later one is compared with. */
  | { kind: "baseline"; value: bigint }
  | { kind: "unchanged"; value: bigint }
  /** Writes were blocked since the previous check. */
  | { kind: "grew"; previous: bigint; value: bigint }
  /** The value went down (the map was re-created): a new baseline, no event. */
  | { kind: "reset"; previous: bigint; value: bigint }
  /** This check could not read the counter; the baseline is kept. */
  | { kind: "error"; message: string };

/**
 * Watches the counter across checks. Only an increase over the last value read counts;
 * a failed read neither moves the baseline nor hides an increase seen afterwards.
 */
export class CounterWatch {
  readonly #read: (signal?: AbortSignal) => Promise<CounterRead>;
  #last: bigint | undefined;

  constructor(read: (signal?: AbortSignal) => Promise<CounterRead>) {
    this.#read = read;
  }

  /** A watch on the pinned map at `mapPath`, read with bpftool. */
  static forMap(mapPath: string, options: BpftoolOptions = {}): CounterWatch {
    return new CounterWatch((signal) => readCounter(mapPath, { ...options, signal }));
  }

  /** Reads the counter; `signal` aborts a read under way (shutdown). */
  async check(signal?: AbortSignal): Promise<CounterChange> {
    const read = await this.#read(signal);
    if (!read.ok) return { kind: "error", message: read.message };
    const previous = this.#last;
    const value = read.value;
    this.#last = value;
    if (previous === undefined) return { kind: "baseline", value };
    if (value > previous) return { kind: "grew", previous, value };
    if (value < previous) return { kind: "reset", previous, value };
    return { kind: "unchanged", value };
  }
}
