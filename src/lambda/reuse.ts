/**
 * Lambda freezes an execution environment after each response and may thaw it for the next invocation: the
 * processes of the previous command (stopped mid-flight, or left running in the background) then run again,
 * and its files are still in /tmp. Before each invocation the handler kills what earlier invocations started
 * and empties $TMPDIR.
 *
 * What earlier invocations started: the command's process group (recorded when it starts), and every process
 * that carries this environment's mark in its environment (BOXER_LAMBDA_ENV, which the command and so all its
 * descendants inherit): that finds a daemon that left the group with setsid too. The record lives in memory
 * and in a file under $TMPDIR (it survives a restart of the runtime after a timeout); it is read before $TMPDIR
 * is emptied and written anew.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../util/paths';
import { killGroup } from '../cli/session';
import { logger } from '../util/log';

const log = logger('lambda');
const RECORD = '.boxer-lambda-record.json';
/** The variable that marks the processes of this environment's commands. */
export const MARK_VAR = 'BOXER_LAMBDA_ENV';
/** This runtime's mark (a restarted runtime gets a new one; the old ones are kept in the record). */
export const MARK = crypto.randomBytes(8).toString('hex');

interface Record {
  groups: number[];
  marks: string[];
}
const record: Record = { groups: [], marks: [MARK] };

function recordFile(): string {
  return path.join(tmpDir(), RECORD);
}

function save(): void {
  try {
    fs.writeFileSync(recordFile(), JSON.stringify(record), { mode: 0o600 });
  } catch (e) {
    log.warn('cannot record what the command started', { reason: (e as Error).message });
  }
}

/** Notes a process group the handler started (the command's), in memory and in $TMPDIR. */
export function noteGroup(pgid: number): void {
  if (!record.groups.includes(pgid)) record.groups.push(pgid);
  save();
}

/** Processes (not this one) whose environment carries one of the marks; unreadable ones are not ours. */
function markedProcesses(marks: string[]): number[] {
  const wanted = new Set(marks.map((m) => `${MARK_VAR}=${m}`));
  const out: number[] = [];
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out; // no /proc
  }
  for (const d of pids) {
    const pid = Number(d);
    if (pid === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').some((kv) => wanted.has(kv))) out.push(pid);
    } catch {
      /* gone, or another user's */
    }
  }
  return out;
}

/** Kills what earlier invocations left and empties $TMPDIR. Returns what it did, for the log and the tests. */
export function cleanUpPrevious(): { killed: number; removed: number } {
  const dir = tmpDir();
  try {
    const old = JSON.parse(fs.readFileSync(recordFile(), 'utf8')) as Partial<Record>;
    for (const g of old.groups ?? []) if (Number.isInteger(g) && g > 1 && !record.groups.includes(g)) record.groups.push(g);
    for (const m of old.marks ?? []) if (typeof m === 'string' && /^[0-9a-f]{16}$/.test(m) && !record.marks.includes(m)) record.marks.push(m);
  } catch {
    /* no record: a fresh environment */
  }
  let killed = 0;
  for (const pgid of record.groups) if (pgid !== process.pid && killGroup(pgid, 'SIGKILL')) killed++;
  for (const pid of markedProcesses(record.marks)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      /* gone meanwhile */
    }
  }
  record.groups = [];
  let removed = 0;
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    /* no $TMPDIR yet */
  }
  for (const e of entries) {
    try {
      fs.rmSync(path.join(dir, e), { recursive: true, force: true });
      removed++;
    } catch (err) {
      log.info('cannot remove a file left in $TMPDIR', { file: e, reason: (err as Error).message });
    }
  }
  save();
  if (killed || removed) log.info('cleaned up after the previous invocation', { killed, removed });
  return { killed, removed };
}
