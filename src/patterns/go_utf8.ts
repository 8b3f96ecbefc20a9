/**
 * UTF-8 decoding as Go's `regexp` sees text: a well-formed sequence is one code point, and
 * every byte that does not start one is one U+FFFD of its own (Go's `utf8.DecodeRune`
 * returns `RuneError` with width 1). `TextDecoder` instead turns a whole ill-formed
 * subsequence (say a truncated 4-byte sequence) into a single U+FFFD, which changes how
 * many characters `.` or `{n}` must match. A rule comment can hold any bytes, so rules are
 * decoded with {@linkcode GoUtf8Decoder}.
 *
 * A byte-order mark is kept: Go does not strip it.
 *
 * @module
 */

/** U+FFFD, which Go's decoder yields for each byte that does not start a valid sequence. */
export const REPLACEMENT = 0xfffd;

/**
 * The length of the well-formed UTF-8 sequence starting at `bytes[i]` (1 to 4), 0 when the
 * byte there does not start one, or -1 when the bytes end before the sequence could
 * complete (and everything present so far fits). Follows Go's `utf8.DecodeRune`: no
 * overlong forms, no surrogates, nothing past U+10FFFF.
 */
export function sequenceLength(bytes: Uint8Array, i: number, end = bytes.length): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) need = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 3;
    if (b0 === 0xe0) lo = 0xa0;
    else if (b0 === 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 4;
    if (b0 === 0xf0) lo = 0x90;
    else if (b0 === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k < need; k++) {
    if (i + k >= end) return -1;
    const b = bytes[i + k];
    if (b < lo || b > hi) return 0;
    lo = 0x80;
    hi = 0xbf;
  }
  return need;
}

const valid = new TextDecoder("utf-8", { ignoreBOM: true });
/** Throws at the first invalid byte: the native fast path for text that is all valid. */
const strict = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });

/**
 * Decodes `bytes[start, end)` completely (no bytes held back), one U+FFFD per invalid byte.
 * Runs of valid text go through `TextDecoder` in one piece, so ASCII costs one scan.
 */
function decodeComplete(bytes: Uint8Array, start: number, end: number): string {
  let out = "";
  let runStart = start;
  let i = start;
  while (i < end) {
    if (bytes[i] < 0x80) {
      i++;
      continue;
    }
    const n = sequenceLength(bytes, i, end);
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > runStart) out += valid.decode(bytes.subarray(runStart, i));
    out += "\ufffd";
    i++;
    runStart = i;
  }
  if (end > runStart) out += valid.decode(bytes.subarray(runStart, end));
  return out;
}

/**
 * A streaming decoder with the shape of `TextDecoder.decode(bytes, { stream })`: with
 * `stream: true` a sequence cut by the end of a chunk is held until the next chunk; the
 * final call (without `stream`) flushes what is held, one U+FFFD per byte.
 */
export class GoUtf8Decoder {
  #pending: Uint8Array = new Uint8Array(0);

  decode(input: Uint8Array = new Uint8Array(0), options: { stream?: boolean } = {}): string {
    let bytes = input;
    if (this.#pending.length > 0) {
      bytes = new Uint8Array(this.#pending.length + input.length);
      bytes.set(this.#pending);
      bytes.set(input, this.#pending.length);
      this.#pending = new Uint8Array(0);
    }
    let end = bytes.length;
    if (options.stream === true) {
      // Hold back a possibly incomplete sequence at the end (at most 3 bytes).
      for (let back = 1; back <= 3 && back <= bytes.length; back++) {
        const at = bytes.length - back;
        if (bytes[at] < 0x80) break;
        if (bytes[at] >= 0xc0) {
          if (sequenceLength(bytes, at) === -1) end = at;
          break;
        }
      }
      this.#pending = bytes.slice(end);
    }
    return decodeGoUtf8(bytes.subarray(0, end));
  }
}

/** Decodes a complete byte string as Go's `regexp` iterates it. */
export function decodeGoUtf8(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes); // valid UTF-8 decodes the same either way
  } catch {
    return decodeComplete(bytes, 0, bytes.length);
  }
}
