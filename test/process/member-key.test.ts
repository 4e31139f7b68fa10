// A named member's kept key (src/cli/member-key.ts): written 0600, given back to the next process under the
// name, never to a second process while the first lives (a pid reused by another process does not count).
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { sodiumReady } from '../../src/crypto/sodium';
import { memberKey } from '../../src/cli/member-key';
import { runtimeDir } from '../../src/util/paths';
import { setSink } from '../../src/util/log';

test.before(async () => {
  await sodiumReady();
  setSink(() => {});
  process.env.TMPDIR = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-mkey-'));
});

test('the key is kept 0600 and comes back; a live holder keeps it to itself', async (t) => {
  const a = memberKey('net1', 'zk1');
  t.false(a.kept);
  const file = path.join(runtimeDir(), 'member-net1-zk1.key');
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  a.release();
  const b = memberKey('net1', 'zk1');
  t.true(b.kept);
  t.deepEqual(Buffer.from(b.keys.publicKey), Buffer.from(a.keys.publicKey));
  b.release();
  // Another network or name: another key.
  const c = memberKey('net2', 'zk1');
  t.notDeepEqual(Buffer.from(c.keys.publicKey), Buffer.from(a.keys.publicKey));
  c.release();

  // A live process holds the lock: the next process under the name gets a fresh key.
  const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 100));
  const lock = path.join(runtimeDir(), 'member-net1-zk1.lock');
  const stat = fs.readFileSync(`/proc/${holder.pid}/stat`, 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  // A lock naming its pid with another start time is a holder that died (its pid reused): not held.
  fs.writeFileSync(lock, `${holder.pid} 1`);
  const stale = memberKey('net1', 'zk1');
  t.true(stale.kept);
  stale.release();
  fs.writeFileSync(lock, `${holder.pid} ${start}`);
  const d = memberKey('net1', 'zk1');
  t.false(d.kept);
  t.notDeepEqual(Buffer.from(d.keys.publicKey), Buffer.from(a.keys.publicKey));
  // It died (SIGKILL, no release): the key is free again.
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  const e = memberKey('net1', 'zk1');
  t.true(e.kept);
  t.deepEqual(Buffer.from(e.keys.publicKey), Buffer.from(a.keys.publicKey));
  e.release();
  // A key file others can read is not taken.
  fs.chmodSync(file, 0o644);
  const f = memberKey('net1', 'zk1');
  t.false(f.kept);
  f.release();
});
