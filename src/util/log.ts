/**
 * Structured, quiet-by-default logging.
 *
 * Every line is logfmt on stderr: `ts=... level=warn comp=seed msg="..." key=value`. The default level is
 * `warn`; `-v` raises it to `info`, `-vv` to `debug` (set with setLevel, or BOXER_LOG=info|debug). Nothing
 * is written to files: an agent may only write under $TMPDIR, and a function's stderr is its log.
 */

export type Level = 'error' | 'warn' | 'info' | 'debug';
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

let current: Level = parseLevel(process.env.BOXER_LOG) ?? 'warn';
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

function parseLevel(s: string | undefined): Level | undefined {
  return s && s in ORDER ? (s as Level) : undefined;
}

export function setLevel(level: Level): void {
  current = level;
}
/** Redirect log lines (tests capture them in memory). Returns the previous sink. */
export function setSink(fn: (line: string) => void): (line: string) => void {
  const prev = sink;
  sink = fn;
  return prev;
}

function fmtValue(v: unknown): string {
  if (v instanceof Error) v = v.message;
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return /^[A-Za-z0-9_.:\/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function logger(comp: string, base: Record<string, unknown> = {}): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] > ORDER[current]) return;
    const all = { ...base, ...fields };
    let line = `ts=${new Date().toISOString()} level=${level} comp=${comp} msg=${JSON.stringify(msg)}`;
    for (const [k, v] of Object.entries(all)) if (v !== undefined) line += ` ${k}=${fmtValue(v)}`;
    sink(line);
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    child: (f) => logger(comp, { ...base, ...f }),
  };
}
