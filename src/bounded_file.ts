/**
 * Reading a file that someone else controls (an allowlist, a `-rulesFile` dump) by what
 * it is, not by what it claims: only a regular file is opened (a FIFO would make the
 * open wait for a writer, forever, in a thread nobody can cancel; a device such as
 * `/dev/zero` never ends), and the size limit counts the bytes actually read.
 *
 * @module
 */

/** What reading gave: the bytes, or why not, in words that complete "FILE ...". */
export type BoundedRead =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "missing" }
  /** More than `maxBytes` bytes could be read. */
  | { kind: "too-big" }
  | { kind: "refused"; reason: string };

/** How a file may be read. */
export interface BoundedReadOptions {
  /** More bytes than this refuse the file (reading stops at limit + 1). */
  maxBytes: number;
  /**
   * Also accept an anonymous pipe this process already holds (`/dev/fd/N` of a shell's
   * `<(...)`): opening one never waits. A named FIFO is refused all the same.
   */
  allowInheritedPipe?: boolean;
  /** How long the open may take; 2 s by default (see {@linkcode readBoundedFile}). */
  openTimeoutMs?: number;
}

/** How long an open may take: a regular file opens at once. */
export const OPEN_TIMEOUT_MS = 2_000;

/**
 * Paths whose open is still waiting (the file was swapped for a FIFO between our stat
 * and our open). While one waits, the path is refused at once instead of being opened
 * again, so a planted FIFO costs one stuck thread per path, never one per check.
 */
const stuckOpens = new Set<string>();

/** What kind of file `info` describes, for messages. */
export function fileKind(info: Deno.FileInfo): string {
  if (info.isFile) return "a regular file";
  if (info.isDirectory) return "a directory";
  if (info.isSymlink) return "a symbolic link";
  if (info.isFifo) return "a named pipe (FIFO)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  return "not a regular file";
}

/** Whether `path` names a pipe this process inherited (`/dev/fd/N` -> `pipe:[...]`). */
async function isInheritedPipe(path: string): Promise<boolean> {
  try {
    return /^pipe:\[\d+\]$/.test(await Deno.readLink(path));
  } catch {
    return false;
  }
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "Deno may not read it (--allow-read)";
  return error instanceof Error ? error.message : String(error);
}

/** Opens `path` for reading, giving up after `timeoutMs` (the open itself goes on). */
async function openWithin(path: string, timeoutMs: number): Promise<Deno.FsFile | "late"> {
  const opening = Deno.open(path, { read: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), timeoutMs);
  });
  try {
    const result = await Promise.race([opening, late]);
    if (result === "late") {
      stuckOpens.add(path);
      opening.then((file) => file.close(), () => {}).finally(() => stuckOpens.delete(path));
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** Reads at most `maxBytes + 1` bytes, counting what the reads return. */
async function readUpTo(file: Deno.FsFile, maxBytes: number): Promise<Uint8Array | "too-big"> {
  let buffer = new Uint8Array(Math.min(64 * 1024, maxBytes + 1));
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (length > maxBytes) return "too-big";
      const grown = new Uint8Array(Math.min(buffer.length * 2, maxBytes + 1));
      grown.set(buffer);
      buffer = grown;
    }
    const read = await file.read(buffer.subarray(length));
    if (read === null) break;
    length += read;
  }
  return length > maxBytes ? "too-big" : buffer.subarray(0, length);
}

/**
 * Reads `path` if it is a regular file (symbolic links followed, as a ConfigMap mount
 * needs) of at most `maxBytes`. The type is checked before the open and again on the
 * open file, so a file swapped between the two is caught; if it was swapped for a FIFO,
 * the open gives up after `openTimeoutMs`.
 */
export async function readBoundedFile(
  path: string,
  options: BoundedReadOptions,
): Promise<BoundedRead> {
  const refused = (reason: string): BoundedRead => ({ kind: "refused", reason });
  const timeoutMs = options.openTimeoutMs ?? OPEN_TIMEOUT_MS;
  if (stuckOpens.has(path)) {
    return refused(
      `could not be opened: an earlier open is still waiting (it turned into a FIFO); ` +
        "replace it with a regular file",
    );
  }
  let pipe = false;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) {
      pipe = info.isFifo === true && options.allowInheritedPipe === true &&
        await isInheritedPipe(path);
      if (!pipe) return refused(`is ${fileKind(info)}, not a regular file, so it was not read`);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { kind: "missing" };
    return refused(`cannot be read: ${describe(error)}`);
  }
  let file: Deno.FsFile | "late";
  try {
    file = await openWithin(path, timeoutMs);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { kind: "missing" };
    return refused(`cannot be read: ${describe(error)}`);
  }
  if (file === "late") {
    return refused(
      `could not be opened within ${timeoutMs / 1000} s: it was replaced by a FIFO or ` +
        "device after it was checked, so it was not read",
    );
  }
  try {
    const info = await file.stat();
    if (!(info.isFile || (pipe && info.isFifo === true))) {
      return refused(
        `is ${fileKind(info)} once opened (it was swapped after it was checked), ` +
          "so it was not read",
      );
    }
    const bytes = await readUpTo(file, options.maxBytes);
    return bytes === "too-big" ? { kind: "too-big" } : { kind: "bytes", bytes };
  } catch (error) {
    return refused(`cannot be read: ${describe(error)}`);
  } finally {
    file.close();
  }
}
