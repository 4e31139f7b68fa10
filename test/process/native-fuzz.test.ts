// Coverage-guided fuzzing of the native parsers that read bytes another party wrote (native/fuzz: libFuzzer with
// ASan and UBSan): the seccomp supervisor's DNS parser (the program's queries), the shim's frame and reply
// parsers (the agent's socket), the member file and route table parsers. Each target runs BOXER_FUZZ_N inputs
// (default 100,000: a few seconds each here) from its seed corpus; any crash, leak report or sanitizer finding
// fails the run and leaves the input in native/out/fuzz/crash-*.
import test from 'ava';
import { execFile } from 'child_process';
import fs from 'fs';
import path from 'path';
import { NATIVE_DIR } from '../support/native';

const RUNS = Number(process.env.BOXER_FUZZ_N ?? 100_000);
const TARGETS = ['dns', 'frame', 'files'];

test('libFuzzer: every native parser takes 100k coverage-guided inputs under ASan/UBSan without a finding', async (t) => {
  t.timeout(600_000);
  const clang = ['/usr/bin/clang-14', '/usr/lib/llvm-14/bin/clang'].find((p) => fs.existsSync(p));
  if (!clang) return t.fail('clang-14 is not installed (.ci/setup installs clang-14 and libclang-rt-14-dev)');
  const out = await new Promise<string>((resolve, reject) =>
    execFile('make', ['-s', '-C', NATIVE_DIR, 'fuzz', `FUZZ_RUNS=${RUNS}`], { timeout: 540_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`make fuzz failed:\n${stdout}${stderr}`)) : resolve(stdout),
    ),
  );
  for (const name of TARGETS) {
    const line = out.split('\n').find((l) => l.startsWith(`fuzz_${name}:`));
    t.truthy(line, `no result line for fuzz_${name} in:\n${out}`);
    t.regex(line!, new RegExp(`Done ${RUNS} runs`), line);
    const cov = Number(/cov: (\d+)/.exec(line!)?.[1] ?? 0);
    t.true(cov > 10, `fuzz_${name} reached ${cov} edges: its harness does not reach the parser`);
    t.false(fs.readdirSync(path.join(NATIVE_DIR, 'out', 'fuzz')).some((f) => f.startsWith(`crash-${name}-`)), `fuzz_${name} left a crash input`);
  }
});
