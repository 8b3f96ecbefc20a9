/**
 * A logger that writes klog's text format on stderr, so that log collectors and people
 * used to the Go agents read this program's logs the same way:
 *
 *     I1126 14:48:52.123456    4242 scan.ts:88] message
 *
 * (severity, month, day, local time with microseconds, pid right-aligned in 7 columns,
 * the calling source file and line). Writes are synchronous and whole records, so lines
 * from a daemon that is being killed are never cut in half.
 */

/** klog's severities: info, warning, error, fatal. */
export type Severity = "I" | "W" | "E" | "F";

/** Where finished records go, one call per record, without the trailing newline. */
export type LogSink = (record: string) => void;

/** Messages of one verbosity level, like klog's `V(level)`. */
export interface VerboseLogger {
  /** Whether messages at this level are logged; test it before building costly ones. */
  readonly enabled: boolean;
  info(message: string): void;
}

/** The logging interface the program passes around. */
export interface Logger {
  /** The `-v` level: `v(n)` messages with n above it are dropped. */
  readonly verbosity: number;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  v(level: number): VerboseLogger;
  /** Same as `v(level).info(message)`. */
  infoV(level: number, message: string): void;
}

/** How {@linkcode createLogger} behaves; only `verbosity` is required. */
export interface LoggerOptions {
  verbosity: number;
  /** klog's `-skip_headers`: the message alone. */
  skipHeaders?: boolean;
  /** klog's `-add_dir_header`: `dir/file.ts` instead of `file.ts`. */
  addDirHeader?: boolean;
  /** Defaults to {@linkcode stderrSink}. */
  sink?: LogSink;
  /** Defaults to the wall clock. */
  now?: () => Date;
}

type Caller = (...args: never[]) => unknown;

/**
 * Creates a logger. The caller's file and line are taken from a stack trace captured
 * only when a record is actually written with a header.
 */
export function createLogger(options: LoggerOptions): Logger {
  const { verbosity } = options;
  const sink = options.sink ?? stderrSink;
  const now = options.now ?? (() => new Date());
  const pid = Deno.pid;

  function write(severity: Severity, message: string, caller: Caller): void {
    const body = message.endsWith("\n") ? message.slice(0, -1) : message;
    if (options.skipHeaders) {
      sink(body);
      return;
    }
    const { file, line } = callerLocation(caller, options.addDirHeader ?? false);
    sink(formatHeader(severity, now(), pid, file, line) + body);
  }

  const silent: VerboseLogger = { enabled: false, info() {} };

  const logger: Logger = {
    verbosity,
    info(message) {
      write("I", message, logger.info);
    },
    warning(message) {
      write("W", message, logger.warning);
    },
    error(message) {
      write("E", message, logger.error);
    },
    v(level) {
      if (level > verbosity) return silent;
      const verbose: VerboseLogger = {
        enabled: true,
        info(message) {
          write("I", message, verbose.info);
        },
      };
      return verbose;
    },
    infoV(level, message) {
      if (level <= verbosity) write("I", message, logger.infoV);
    },
  };
  return logger;
}

/**
 * klog's header, `Lmmdd hh:mm:ss.uuuuuu PPPPPPP file:line] `, in local time. Like klog,
 * a pid wider than 7 digits keeps its last 7.
 */
export function formatHeader(
  severity: Severity,
  time: Date,
  pid: number,
  file: string,
  line: number,
): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const micros = String(time.getMilliseconds() * 1000).padStart(6, "0");
  const pidText = String(pid % 10_000_000).padStart(7, " ");
  return `${severity}${two(time.getMonth() + 1)}${two(time.getDate())} ` +
    `${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}.${micros} ` +
    `${pidText} ${file}:${line}] `;
}

const encoder = new TextEncoder();

/**
 * Writes one record and a newline to stderr synchronously, looping until every byte
 * is out. A closed stderr drops the record, as klog does: logging never ends the
 * program.
 */
export function stderrSink(record: string): void {
  const bytes = encoder.encode(record + "\n");
  try {
    let written = 0;
    while (written < bytes.length) {
      const n = Deno.stderr.writeSync(bytes.subarray(written));
      if (n <= 0) return;
      written += n;
    }
  } catch {
    // stderr is gone (closed pipe); there is nowhere left to report it.
  }
}

// "    at fn (file:///a/b.ts:12:5)" or "    at file:///a/b.ts:12:5"
const FRAME = /^\s*at (?:.* \()?(.+?):(\d+):\d+\)?$/;

/** The source file and line of whoever called `caller`, as klog shows them. */
function callerLocation(caller: Caller, withDir: boolean): { file: string; line: number } {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, caller);
  const frame = holder.stack?.split("\n")[1];
  const match = frame === undefined ? null : FRAME.exec(frame);
  if (match === null) return { file: "???", line: 1 };
  const parts = decodePath(match[1]).split("/");
  const keep = withDir && parts.length >= 2 ? 2 : 1;
  return { file: parts.slice(-keep).join("/"), line: Number(match[2]) };
}

function decodePath(location: string): string {
  try {
    return decodeURIComponent(location);
  } catch {
    return location;
  }
}
