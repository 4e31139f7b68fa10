// boxer run and the shim, on loopback: a dynamically linked program loads it (no warning; the agent counts
// it); a statically linked one runs under the seccomp supervisor (no warning; the supervisor reports in for
// it), and with --intercept shim it cannot load the shim and boxer run says so clearly; where seccomp is
// unavailable the supervisor says so. --no-shim runs without either.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { boxer, sandbox, startSeed } from '../support/procs';

const WARNING = /did not load the Boxer shim .* it runs WITHOUT the virtual network/;
const NO_SECCOMP = /seccomp user notification is not available here .*: \S*static runs WITHOUT the virtual network/;

test('a program that loads the shim is counted; a static binary runs under the seccomp supervisor, or gets a clear warning', async (t) => {
  const { env, tmp } = sandbox();
  const seed = await startSeed(env);
  try {
    // Dynamic: the shim says HELLO at load; status counts it.
    const dyn = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', 'sleep 4; node "$BOXER_CLI" status --json'], { ...env, BOXER_CLI: path.resolve(__dirname, '../../../bin/boxer') });
    t.is((await dyn.exited).code, 0, dyn.err());
    t.notRegex(dyn.err(), WARNING);
    const st = JSON.parse(dyn.out()) as { vnet: { shims: Array<{ name: string }> } };
    t.true(st.vnet.shims.length >= 1, 'the program reported in');

    // Static: cannot load a preload library.
    const src = path.join(tmp, 'static.c');
    const bin = path.join(tmp, 'static');
    fs.writeFileSync(src, '#include <unistd.h>\nint main(void) { sleep(5); return 3; }\n');
    try {
      execFileSync('gcc', ['-static', '-O1', '-o', bin, src], { stdio: 'pipe' });
    } catch (e) {
      t.fail(`cannot build a static test binary: ${(e as Error).message}`);
      return;
    }
    const cli = path.resolve(__dirname, '../../../bin/boxer');
    const sup = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', `${bin} & sleep 2; node "$BOXER_CLI" status --json; wait $!`], {
      ...env,
      BOXER_CLI: cli,
      BOXER_INTERCEPT: 'seccomp',
    });
    t.is((await sup.exited).code, 3, 'under the supervisor: its exit status comes through');
    t.notRegex(sup.err(), WARNING);
    const st3 = JSON.parse(sup.out()) as { vnet: { shims: Array<{ name: string }> } };
    t.true(st3.vnet.shims.some((s) => s.name === 'sh'), `the supervisor reported in for it: ${sup.out()}`);
    const auto = boxer(['run', '--seed', seed.addr, '--', bin], env);
    t.is((await auto.exited).code, 3, 'auto: the static binary runs under the supervisor');
    t.notRegex(auto.err(), WARNING);
    const st2 = boxer(['run', '--seed', seed.addr, '--intercept', 'shim', '--', bin], env);
    t.is((await st2.exited).code, 3, 'its exit status still comes through');
    t.regex(st2.err(), WARNING);
    const off2 = boxer(['run', '--seed', seed.addr, '--', bin], { ...env, BOXER_SECCOMP_UNAVAILABLE: '1' });
    t.is((await off2.exited).code, 3);
    t.regex(off2.err(), NO_SECCOMP);

    // --no-shim: no preload, no warning.
    const off = boxer(['run', '--seed', seed.addr, '--no-shim', '--', 'sh', '-c', 'echo "preload=[$LD_PRELOAD]"'], env);
    t.is((await off.exited).code, 0);
    t.regex(off.out(), /preload=\[\]/);
    t.notRegex(off.err(), WARNING);
  } finally {
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
});
