// A named member killed with SIGKILL (no leave) and started again under its name, as real processes on
// loopback: it gets its id and virtual address back at once (its kept key proves it is the same member), while a
// second live process under a name in use is still refused (exit 73).
import test from 'ava';
import fs from 'node:fs';
import { boxer, sandbox, startSeed } from '../support/procs';
import { EXIT } from '../../src/util/errors';

const SCRIPT = `echo "id=$BOXER_NODE_ID addr=$BOXER_ADDR"; while [ ! -e "$STOP" ]; do sleep 0.1; done`;

test('a member killed with SIGKILL and restarted under its name gets its id and address back at once', async (t) => {
  const { env, tmp } = sandbox();
  const seed = await startSeed(env);
  const stop = `${tmp}/stop`;
  const procs = [];
  try {
    const other = boxer(['run', '--seed', seed.addr, '--name', 'other', '--', 'sh', '-c', SCRIPT], { ...env, STOP: stop });
    procs.push(other);
    await other.waitFor(/id=\d+/);
    const first = boxer(['run', '--seed', seed.addr, '--name', 'zk1', '--', 'sh', '-c', SCRIPT], { ...env, STOP: stop });
    procs.push(first);
    const [, id1, addr1] = (await first.waitFor(/id=(\d+) addr=(\S+)/))!;
    // While zk1 lives, another process under its name is refused.
    const impostor = boxer(['run', '--seed', seed.addr, '--name', 'zk1', '--', 'true'], env);
    t.is((await impostor.exited).code, EXIT.NAME_TAKEN, impostor.err());
    first.child.kill('SIGKILL');
    await first.exited;
    const started = Date.now();
    const again = boxer(['run', '--seed', seed.addr, '--name', 'zk1', '--', 'sh', '-c', SCRIPT], { ...env, STOP: stop });
    procs.push(again);
    const [, id2, addr2] = (await again.waitFor(/id=(\d+) addr=(\S+)/))!;
    const ms = Date.now() - started;
    t.is(id2, id1);
    t.is(addr2, addr1);
    t.log(`restarted member running with its old id after ${ms} ms (process start included)`);
    t.true(again.child.exitCode === null, again.err());
  } finally {
    fs.writeFileSync(stop, '');
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
});
