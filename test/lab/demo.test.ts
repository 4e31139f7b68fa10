/**
 * `boxer demo --scenario burst` as a user runs it (root, the CLI, its own lab): the four functions join the
 * service and serve requests beside the VM member, no request fails, and the lab is gone afterwards; and a
 * Ctrl-C (SIGINT) in the middle of the run removes the lab too.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { checkLabPrerequisites } from '../../overlay';

const ROOT = path.resolve(__dirname, '../../..');
const BOXER = path.join(ROOT, 'bin', 'boxer');
const FUNCTIONS = ['api-fp', 'api-fsa', 'api-fta', 'api-fla'];
const pre = checkLabPrerequisites();
const lt = pre.ok ? test.serial : test.skip;
if (!pre.ok) console.log(`lab tests not run: ${pre.reason}`);

/** Runs the demo; onLine sees each line of its output (it may kill the child). */
function runDemo(args: string[], timeoutMs: number, onLine: (line: string, kill: (sig: NodeJS.Signals) => void) => void = () => undefined): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BOXER, 'demo', '--scenario', 'burst', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let partial = '';
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    const take = (d: Buffer) => {
      out += d.toString();
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) onLine(l, (sig) => child.kill(sig));
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function namespacesOf(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.startsWith(`${prefix}-`));
}

const prefixOf = (out: string) => /^lab (\S+) is up/m.exec(out)?.[1];

lt('the burst demo: four functions join the loaded service and serve requests; none fails; the lab is removed', async (t) => {
  t.timeout(6 * 60_000);
  const r = await runDemo(['--seconds', '25'], 5 * 60_000);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /demo: burst: 4 of 4 functions joined the service and served requests/, r.out);
  t.regex(r.out, /failed requests: 0$/m, r.out);
  for (const f of FUNCTIONS) {
    t.regex(r.out, new RegExp(`${f} listens: joined`));
    const served = Number(new RegExp(`^served by ${f}: (\\d+) requests$`, 'm').exec(r.out)?.[1] ?? 0);
    t.true(served > 0, `${f} served ${served} requests:\n${r.out}`);
  }
  t.true(Number(/^served by api-vm: (\d+) requests$/m.exec(r.out)?.[1] ?? 0) > 0, 'the VM member served');
  const prefix = prefixOf(r.out);
  t.truthy(prefix, 'the demo names its lab');
  t.deepEqual(namespacesOf(prefix!), [], 'no namespace of the lab is left');
});

lt('Ctrl-C in the middle of the burst demo removes its lab', async (t) => {
  t.timeout(4 * 60_000);
  let interrupted = false;
  const r = await runDemo(['--seconds', '60'], 3 * 60_000, (line, kill) => {
    if (!interrupted && /functions start the logic tier/.test(line)) {
      interrupted = true;
      kill('SIGINT');
    }
  });
  t.true(interrupted, r.out);
  t.is(r.code, 130, r.out);
  t.regex(r.out, /interrupted \(SIGINT\); the lab is removed/);
  const prefix = prefixOf(r.out);
  t.truthy(prefix);
  t.deepEqual(namespacesOf(prefix!), [], 'no namespace of the lab is left');
});
