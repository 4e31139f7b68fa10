/**
 * The lab's life cycle and its contracts that need no NAT behaviour (topology validation and the rulesets:
 * test/unit/topology.test.ts): when a lab can be built, that `down` leaves nothing behind, that a
 * failure midway through `up` is undone, that `down --stale` sweeps labs whose owner died, that
 * `boxer lab up` leaves a lab another process finds, and that the prerequisite check refuses a non-root user.
 */

import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkLabPrerequisites, FUNCTION_USER, Lab, type Topology } from '../../overlay';
import { readState, statePath } from '../../overlay/state';
import { ensureFunctionUser, readabilityProblem } from '../../overlay/sys';

const ROOT = path.resolve(__dirname, '..', '..', '..');
/** Bound on a child `node` process driving the lab (building one takes about a second). */
const CHILD_TIMEOUT_MS = 60_000;

// ------------------------------------------------------------------ with a lab

const pre = checkLabPrerequisites();
if (!pre.ok) console.log(`lab tests not run: ${pre.reason}`);
const labOnly = pre.ok ? test.serial : test.serial.skip;

const tiny = (): Topology => ({
  hosts: [{ name: 'h' }],
  gateways: [{ name: 'g', kind: 'translating', subnet: '10.8.0.0/24', functions: ['f'], rate: '10mbit', loss: 1, idleTimeout: 60 }],
});

function leftovers(prefix: string): string[] {
  const found: string[] = [];
  const netns = execFileSync('ip', ['netns', 'list']).toString();
  if (netns.includes(`${prefix}-`)) found.push(`namespaces: ${netns.trim()}`);
  const links = execFileSync('ip', ['-o', 'link']).toString();
  if (links.includes(prefix)) found.push(`links: ${links}`);
  const rules = spawnSync('nft', ['list', 'ruleset']).stdout?.toString() ?? '';
  if (rules.includes(prefix)) found.push('nft rules');
  const tmp = fs.readdirSync('/tmp').filter((n) => n.startsWith(`${prefix}-`));
  if (tmp.length) found.push(`dirs: ${tmp.join(', ')}`);
  if (fs.existsSync(statePath(prefix))) found.push('state file');
  return found;
}

labOnly('down removes every namespace, link, rule, directory and the state file', async (t) => {
  const lab = await Lab.up(tiny());
  try {
    t.true(execFileSync('ip', ['netns', 'list']).toString().includes(`${lab.prefix}-g`));
    t.truthy(readState(lab.prefix));
    t.deepEqual(lab.knobs('g'), { loss: 1, rate: '10mbit', idleTimeout: 60 });
    const r = await lab.exec('g', 'sysctl', ['-n', 'net.netfilter.nf_conntrack_tcp_timeout_established'], { timeoutMs: 5000 });
    t.is(r.stdout.trim(), '60');
    // A process left running must not keep anything alive.
    lab.spawn('f', 'sleep', ['60']);
  } finally {
    await lab.down();
  }
  t.deepEqual(leftovers(lab.prefix), []);
  t.throws(() => lab.spawn('f', 'true'), { message: /is down/ });
});

labOnly('a failure midway through up removes what was built', async (t) => {
  let prefix = '';
  await t.throwsAsync(
    Lab.up(tiny(), {
      onProgress: (step) => {
        if (step === 'namespaces') prefix = readStateFromDir();
        if (step === 'gateway g') throw new Error('injected failure');
      },
    }),
    { message: /injected failure/ },
  );
  t.regex(prefix, /^bx/);
  t.deepEqual(leftovers(prefix), []);
});

/** The newest state file's prefix (the lab being built by this process). */
function readStateFromDir(): string {
  const mine = Lab.list().filter((s) => s.owner?.pid === process.pid);
  return mine[mine.length - 1]?.prefix ?? '';
}

function runNode(t: ExecutionContext, script: string, args: string[] = []): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', script, ...args], { cwd: ROOT, timeout: CHILD_TIMEOUT_MS, encoding: 'utf8' });
  t.log(`node -e ... ${args.join(' ')}: exit ${r.status}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

labOnly('down --stale sweeps a lab whose owner process died, and only that one', async (t) => {
  const mine = await Lab.up(tiny());
  try {
    const child = runNode(
      t,
      `require('./dist/overlay').Lab.up(${JSON.stringify(tiny())}).then((l) => { console.log(l.prefix); process.exit(0); })`,
    );
    const orphan = child.stdout.trim();
    t.regex(orphan, /^bx[a-z0-9]{4}$/, child.stderr);
    t.true(execFileSync('ip', ['netns', 'list']).toString().includes(`${orphan}-g`), 'the dead owner left its lab');
    const swept = Lab.sweepStale();
    t.true(swept.includes(orphan));
    t.false(swept.includes(mine.prefix), 'a live owner keeps its lab');
    t.deepEqual(leftovers(orphan), []);
    t.true(execFileSync('ip', ['netns', 'list']).toString().includes(`${mine.prefix}-g`));
  } finally {
    await mine.down();
  }
});

const CLI = `
const { labCommand } = require('./dist/overlay');
const i = process.argv.indexOf('--');
const argv = process.argv.slice(1, i < 0 ? undefined : i);
require('yargs/yargs')(argv).command('lab <cmd>', 'lab', labCommand).strict().demandCommand(1).parseAsync()
  .catch((e) => { console.error(e.message); process.exit(e.exitCode ?? 70); });
`;

labOnly('boxer lab up leaves a lab that later processes exec in, list and take down', async (t) => {
  const topoFile = path.join(fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'bxtopo-')), 'topo.json');
  fs.writeFileSync(topoFile, JSON.stringify(tiny()));
  const prefix = 'bxcli' + String.fromCharCode(97 + (process.pid % 26));
  try {
    const up = runNode(t, CLI, ['lab', 'up', '--topology', topoFile, '--prefix', prefix]);
    t.is(up.code, 0, up.stderr);
    t.regex(up.stdout, /is up/);
    const status = runNode(t, CLI, ['lab', 'status', '--json']);
    const parsed = JSON.parse(status.stdout) as { labs: { prefix: string; stale: boolean }[] };
    t.true(parsed.labs.some((l) => l.prefix === prefix && !l.stale));
    const ex = runNode(t, CLI, ['lab', 'exec', '--prefix', prefix, 'f', '--', 'sh', '-c', 'id -un; exit 7']);
    t.is(ex.code, 7);
    t.is(ex.stdout.trim(), FUNCTION_USER);
    t.deepEqual(Lab.sweepStale().filter((p) => p === prefix), [], '--stale leaves a lab left running on purpose');
    const down = runNode(t, CLI, ['lab', 'down', '--prefix', prefix]);
    t.is(down.code, 0, down.stderr);
  } finally {
    if (readState(prefix)) Lab.destroy(prefix);
    fs.rmSync(path.dirname(topoFile), { recursive: true, force: true });
  }
  t.deepEqual(leftovers(prefix), []);
});

labOnly('the prerequisite check says what a non-root user lacks', (t) => {
  const r = spawnSync(
    'setpriv',
    ['--reuid', FUNCTION_USER, '--regid', FUNCTION_USER, '--clear-groups', '--', process.execPath, '-e',
      "console.log(JSON.stringify(require('./dist/overlay').checkLabPrerequisites()))"],
    { cwd: ROOT, timeout: CHILD_TIMEOUT_MS, encoding: 'utf8' },
  );
  const res = JSON.parse(r.stdout) as { ok: boolean; reason?: string };
  t.false(res.ok);
  t.regex(res.reason ?? '', /need root/);
});

labOnly('the readability check names what the function user cannot read, and how to fix it', (t) => {
  const ids = ensureFunctionUser();
  t.is(readabilityProblem(ids), undefined, 'this project is readable by the function user');
  const dir = fs.mkdtempSync('/tmp/bxro-');
  try {
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.chmodSync(dir, 0o700);
    const msg = readabilityProblem(ids, dir);
    t.regex(msg ?? '', new RegExp(`cannot read ${dir}`));
    t.regex(msg ?? '', /chmod -R a\+rX/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
