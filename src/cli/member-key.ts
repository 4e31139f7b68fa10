/**
 * A named member's static key, kept under $TMPDIR so that the member proves it is the same member when it comes
 * back under its name (restarted after SIGKILL, no leave): the seed gives its key's id and virtual address back
 * at once (src/control/bindings.ts). One file per network and name, `member-NETWORK-NAME.key` (the 32-byte
 * private key, mode 0600, in the 0700 runtime directory), and a lock `member-NETWORK-NAME.lock` naming the
 * process using it (pid and start time, so a reused pid is not taken for it): a second process under the same
 * name on the same host while the first lives is another member (it gets a fresh key, and the seed refuses the
 * name), not the same one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sodium } from '../crypto/sodium';
import { generateKeyPair, type KeyPair } from '../crypto/keys';
import { runtimeDir } from '../util/paths';
import { logger } from '../util/log';

const log = logger('member-key');

export interface MemberKey {
  keys: KeyPair;
  /** True when the key was kept from an earlier run under this name. */
  kept: boolean;
  /** Gives the lock up (at exit); the key file stays. */
  release(): void;
}

/** A process's start time (clock ticks since boot, /proc/PID/stat field 22), or '' where /proc does not say. */
function startTime(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** What the lock file says of its holder: "PID STARTTIME". */
function lockText(): string {
  return `${process.pid} ${startTime(process.pid)}`;
}

/** Whether the lock's holder is a live process other than this one (not another that got its pid since). */
function holderAlive(text: string): boolean {
  const [p, start = ''] = text.trim().split(/\s+/);
  const pid = Number(p);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !start || startTime(pid) === start || startTime(pid) === '';
}

/** Takes the lock file, or returns false when a live process holds it. */
function lock(file: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, lockText(), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = '';
    try {
      holder = fs.readFileSync(file, 'utf8');
    } catch {
      /* removed meanwhile */
    }
    if (holderAlive(holder)) return false;
    try {
      fs.unlinkSync(file); // a holder that died without releasing (SIGKILL)
    } catch {
      /* another process took it first: the next attempt says which */
    }
  }
  return false;
}

function readKey(file: string): KeyPair | null {
  try {
    const st = fs.statSync(file);
    if ((st.mode & 0o077) !== 0 || (typeof process.getuid === 'function' && st.uid !== process.getuid())) {
      log.warn('ignoring a member key file others can read or that is not ours', { file });
      return null;
    }
    const priv = fs.readFileSync(file);
    if (priv.length !== 32) return null;
    const privateKey = new Uint8Array(priv);
    return { privateKey, publicKey: sodium().crypto_scalarmult_base(privateKey) };
  } catch {
    return null;
  }
}

/**
 * The key of member `name` in network `networkId` (sodium must be ready): the kept one when no live process
 * holds it, else a fresh one (kept for next time when the name is free here).
 */
export function memberKey(networkId: string, name: string): MemberKey {
  const dir = runtimeDir();
  const base = path.join(dir, `member-${networkId}-${name}`);
  const keyFile = `${base}.key`;
  const lockFile = `${base}.lock`;
  let locked = false;
  try {
    locked = lock(lockFile);
  } catch (e) {
    log.warn('cannot lock the member key; using a fresh key', { file: lockFile, reason: (e as Error).message });
  }
  if (!locked) {
    log.debug('another live process on this host holds the key of this name: using a fresh key', { name });
    return { keys: generateKeyPair(), kept: false, release: () => {} };
  }
  const release = () => {
    try {
      if (fs.readFileSync(lockFile, 'utf8') === lockText()) fs.unlinkSync(lockFile);
    } catch {
      /* gone */
    }
  };
  const kept = readKey(keyFile);
  if (kept) return { keys: kept, kept: true, release };
  const keys = generateKeyPair();
  try {
    const tmp = `${keyFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, keys.privateKey, { mode: 0o600 });
    fs.renameSync(tmp, keyFile);
  } catch (e) {
    log.warn('cannot keep the member key (a restart under this name will be a new member)', { file: keyFile, reason: (e as Error).message });
  }
  return { keys, kept: false, release };
}
