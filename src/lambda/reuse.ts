/**
 * Lambda freezes an execution environment after each response and may thaw it for the next invocation: the
 * processes of the previous command (stopped mid-flight, or left running in the background) then run again,
 * and its files are still in /tmp. Before each invocation the handler kills the process groups the previous
 * invocations started and empties $TMPDIR. The groups are recorded in memory and in a file (which survives a
 * restart of the runtime after a timeout); the file is read before $TMPDIR is emptied and written anew.
 */
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../util/paths';
import { killGroup } from '../cli/session';
import { logger } from '../util/log';

const log = logger('lambda');
const RECORD = '.boxer-lambda-groups';

const groups = new Set<number>();

function recordFile(): string {
  return path.join(tmpDir(), RECORD);
}

/** Notes a process group the handler started (the command's), in memory and in $TMPDIR. */
export function noteGroup(pgid: number): void {
  groups.add(pgid);
  try {
    fs.writeFileSync(recordFile(), [...groups].join('\n') + '\n', { mode: 0o600 });
  } catch (e) {
    log.warn('cannot record the command process group', { reason: (e as Error).message });
  }
}

/** Kills what earlier invocations left and empties $TMPDIR. Returns what it did, for the log and the tests. */
export function cleanUpPrevious(): { killed: number; removed: number } {
  const dir = tmpDir();
  try {
    for (const line of fs.readFileSync(recordFile(), 'utf8').split('\n')) {
      const n = Number(line);
      if (Number.isInteger(n) && n > 1) groups.add(n);
    }
  } catch {
    /* no record: a fresh environment */
  }
  let killed = 0;
  for (const pgid of groups) if (pgid !== process.pid && killGroup(pgid, 'SIGKILL')) killed++;
  groups.clear();
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
  if (killed || removed) log.info('cleaned up after the previous invocation', { killed, removed });
  return { killed, removed };
}
