// Bad command lines and signals at awkward moments, as real processes on loopback: each is refused at once
// with exit 64 and a message saying what to do, or ends with the status a shell would give; nothing waits
// for a timeout that the input made endless.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { boxer, sandbox, startSeed, freePort, until } from '../support/procs';
import { EXIT } from '../../src/util/errors';

/**
 * A bound against waiting, not a speed check: a refusal is told apart from a network attempt by its exit status
 * (64, where an attempt ends 69 after the join timeout); this bound only catches input that made the wait
 * endless, generously, since a node start alone takes seconds on a loaded machine.
 */
const AT_ONCE_MS = 20_000;
/** Where the option under test is another: a minute's join timeout, so a missed refusal cannot pass as one. */
const LONG = ['--join-timeout', '60'];

async function refused(t: import('ava').ExecutionContext, args: string[], env: NodeJS.ProcessEnv, re: RegExp): Promise<void> {
  const start = Date.now();
  const p = boxer(args, env);
  const r = await p.exited;
  t.is(r.code, EXIT.USAGE, `${args.join(' ')}: ${p.err()}`);
  t.regex(p.err(), re);
  t.true(Date.now() - start < AT_ONCE_MS, `${args.join(' ')} took ${Date.now() - start} ms`);
}

test('--join-timeout must be a positive number of seconds', async (t) => {
  const { env } = sandbox();
  const port = await freePort();
  for (const v of ['abc', '-1', '0', 'NaN', 'Infinity']) {
    await refused(t, ['run', '--seed', `127.0.0.1:${port}`, '--join-timeout', v, '--', 'true'], env, /--join-timeout.*seconds/);
  }
});

test('--seed with a URL scheme or a path is refused at once (HOST:PORT, no http://)', async (t) => {
  const { env } = sandbox();
  for (const v of ['http://127.0.0.1:7080', 'tcp://seed:7070', 'seed/x:7070', 'a b:7070']) {
    await refused(t, ['run', '--seed', v, ...LONG, '--', 'true'], env, /--seed .*HOST:PORT/);
  }
});

test('an empty --name is refused, not turned into node-N', async (t) => {
  const { env } = sandbox();
  const port = await freePort();
  await refused(t, ['run', '--seed', `127.0.0.1:${port}`, ...LONG, '--name', '', '--', 'true'], env, /--name "" is not a valid name/);
});

test('a $TMPDIR the agent cannot write is refused with what to do, not an internal error', async (t) => {
  const { env, tmp } = sandbox();
  const port = await freePort();
  const file = path.join(tmp, 'not-a-directory');
  fs.writeFileSync(file, '');
  await refused(t, ['run', '--seed', `127.0.0.1:${port}`, ...LONG, '--name', 'x', '--', 'true'], { ...env, TMPDIR: file }, /cannot create .*not-a-directory\/boxer-\d+ \(ENOTDIR\).*set TMPDIR/);
});

test('boxer demo: options of the other scenario, or out of bounds, are refused before any lab is built', async (t) => {
  const { env } = sandbox();
  await refused(t, ['demo', '--seconds', '30'], env, /--seconds is for --scenario burst/);
  await refused(t, ['demo', '--scenario', 'burst', '--loopback'], env, /needs the lab/);
  for (const v of ['5', '301', '25.5']) await refused(t, ['demo', '--scenario', 'burst', '--seconds', v], env, /--seconds must be a whole number from 20 to 300/);
});

test('--nodes is bounded by what a network can hold', async (t) => {
  const { env } = sandbox();
  const port = await freePort();
  await refused(t, ['run', '--seed', `127.0.0.1:${port}`, ...LONG, '--nodes', '1000000000', '--', 'true'], env, /--nodes 1000000000.*at most/);
  // Within the absolute bound but beyond the seed's network: refused once the join says how big it is.
  const seed = await startSeed(env, ['--network', '10.9.0.0/24']);
  try {
    const p = boxer(['run', '--seed', seed.addr, '--nodes', '300', '--', 'true'], env);
    const r = await p.exited;
    t.is(r.code, EXIT.USAGE, p.err());
    t.regex(p.err(), /10\.9\.0\.0\/24 holds at most 254 members/);
  } finally {
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
});

test('a secret file others can read is refused with the fix', async (t) => {
  const { env, tmp } = sandbox();
  const port = await freePort();
  const file = path.join(tmp, 'secret');
  fs.writeFileSync(file, 'a secret of enough length\n', { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  const noEnv = { ...env, BOXER_SECRET: '' };
  await refused(t, ['run', '--seed', `127.0.0.1:${port}`, ...LONG, '--secret-file', file, '--', 'true'], noEnv, /readable by other users.*chmod 600/);
  await refused(t, ['seed', '--listen', `127.0.0.1:${port}`, '--secret-file', file], noEnv, /readable by other users.*chmod 600/);
  fs.chmodSync(file, 0o600);
  const ok = boxer(['run', '--seed', `127.0.0.1:${port}`, '--secret-file', file, '--join-timeout', '0.5', '--', 'true'], noEnv);
  t.is((await ok.exited).code, EXIT.SEED_UNREACHABLE, 'a private secret file is taken');
});

test('SIGTERM while joining leaves cleanly and exits 143', async (t) => {
  const { env } = sandbox();
  const port = await freePort();
  // Nothing listens: the agent is retrying the join when the signal comes.
  const p = boxer(['run', '--seed', `127.0.0.1:${port}`, '--join-timeout', '60', '-v', '--', 'true'], env);
  await p.waitFor(/joining/, 'err');
  await new Promise((r) => setTimeout(r, 300));
  const start = Date.now();
  p.child.kill('SIGTERM');
  const r = await p.exited;
  t.is(r.code, 143, p.err());
  t.true(Date.now() - start < AT_ONCE_MS);
});

test('SIGTERM at the barrier leaves (the seed hears "leave") and exits 143; SIGINT exits 130', async (t) => {
  const { env } = sandbox();
  const seed = await startSeed(env, ['-v']);
  try {
    for (const [sig, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const p = boxer(['run', '--seed', seed.addr, '--nodes', '3', '--', 'true'], env);
      await p.waitFor(/waiting for members 1\/3/, 'err');
      p.child.kill(sig);
      t.is((await p.exited).code, code, p.err());
    }
    await until(() => (seed.proc.err().match(/member left/g) ?? []).length >= 2, 10_000, 'two leaves at the seed');
    t.pass();
  } finally {
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
});
