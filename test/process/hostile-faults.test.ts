// Faults as real processes on loopback, each with its exact outcome and the time it took to notice:
// kill -9 of the agent reaches the program as SIGTERM to its process group; closing the peer-link listener
// ends the connections a peer opened while we shut down (they kept `boxer run -- true` alive).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { boxer, sandbox, startSeed, until } from '../support/procs';
import { nativeIo } from '../../src/traversal/io';

test('kill -9 of the agent: the program and its children get SIGTERM at once', async (t) => {
  const { env, tmp } = sandbox();
  const seed = await startSeed(env);
  const out = path.join(tmp, 'out');
  // The program starts a child in its group; both record the SIGTERM they get. Both loops are bounded (60 s), and
  // the group is killed at the end whatever happened, so a failed check leaves nothing running.
  const loop = 'i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done';
  const script = `echo $$ > "$OUT.pid"; trap 'echo parent-term >> "$OUT"; exit 0' TERM; sh -c 'trap "echo child-term >> \\"$OUT\\"; exit 0" TERM; echo child-up >> "$OUT"; ${loop}' & echo up >> "$OUT"; ${loop}`;
  const p = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', script], { ...env, OUT: out });
  try {
    await until(() => fs.existsSync(out) && /child-up/.test(fs.readFileSync(out, 'utf8')) && /\bup\b/.test(fs.readFileSync(out, 'utf8')), 20_000, 'the program to start');
    const start = Date.now();
    p.child.kill('SIGKILL');
    await until(() => /parent-term/.test(fs.readFileSync(out, 'utf8')) && /child-term/.test(fs.readFileSync(out, 'utf8')), 15_000, 'SIGTERM at the program');
    // How fast is a benchmark figure (docs/security.md); here only that it comes, bounded against hangs.
    t.log(`the program heard of the agent's death after ${Date.now() - start} ms`);
    t.pass();
  } finally {
    const pid = Number(fs.existsSync(`${out}.pid`) ? fs.readFileSync(`${out}.pid`, 'utf8') : NaN);
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone: the expected case */
      }
    }
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
});

test('closing the peer-link listener ends connections still in set-up (a peer linking while we shut down)', async (t) => {
  const held: net.Socket[] = [];
  // The peer-link listener's owner ignores the stream (as during a handshake that never completes).
  const listener = await nativeIo.listen(() => undefined);
  for (let i = 0; i < 5; i++) {
    const c = net.connect(listener.port, '127.0.0.1');
    c.on('error', () => undefined);
    held.push(c);
    await new Promise((r) => c.once('connect', r));
  }
  const ended = Promise.all(held.map((c) => new Promise((r) => c.once('close', r))));
  const start = Date.now();
  const closed = await Promise.race([listener.close().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5_000))]);
  t.true(closed, 'close() returned');
  t.true(Date.now() - start < 1_000, `close() took ${Date.now() - start} ms`);
  await ended;
  held.forEach((c) => c.destroy());
});
