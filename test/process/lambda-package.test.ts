// `boxer lambda package`: what the zip holds (index.js at its root exporting handler, the compiled agent, only
// the runtime dependencies, the native parts of the architecture, --include under app/), the Unix modes, the
// size of Boxer itself; the native parts' symbol versions against Amazon Linux 2023 (glibc 2.34, libstdc++ of
// gcc 11) for both architectures; and the shim's C unit tests built for arm64, run under qemu-user.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BOXER_MAX_ZIP_BYTES, LAMBDA_ARCHES } from '../../src/lambda/package';
import { boxer } from '../support/procs';
import { unpack } from '../support/lambda-runtime';

const ROOT = path.resolve(__dirname, '../../..');
const NATIVE = ['native/build/Release/boxer_native.node', 'native/out/libboxer-shim.so', 'native/out/boxer-seccomp'];
/** Amazon Linux 2023: glibc 2.34; gcc 11's libstdc++ (GLIBCXX_3.4.29, CXXABI_1.3.13). */
const LIMITS: Record<string, string> = { GLIBC: '2.34', GLIBCXX: '3.4.29', CXXABI: '1.3.13' };
/** ELF e_machine of each architecture. */
const MACHINE = { x86_64: 62, arm64: 183 };
const QEMU = '/usr/bin/qemu-aarch64-static';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-lambda-package-'));
test.after.always(() => {
  for (const d of fs.readdirSync(work)) fs.chmodSync(path.join(work, d), 0o755);
  fs.rmSync(work, { recursive: true, force: true });
});

/** `zipinfo` lines: mode string and name of every entry. */
function listing(zip: string): Map<string, string> {
  const out = execFileSync('zipinfo', ['-l', zip], { encoding: 'utf8' });
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (/^-[rwx-]{9}$/.test(f[0] ?? '')) m.set(f[f.length - 1], f[0]);
  }
  return m;
}

function cmpVersion(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** Every symbol version a binary needs (readelf's version needs section), as NAME_VERSION. */
function neededVersions(file: string): string[] {
  const out = execFileSync('readelf', ['--version-info', '--wide', file], { encoding: 'utf8' });
  return [...new Set([...out.matchAll(/Name: ((?:GLIBC|GLIBCXX|CXXABI)_[0-9.]+)/g)].map((m) => m[1]))];
}

test('the x86_64 zip: index.js exports handler, only runtime dependencies, modes 644/755, Boxer under 2 MB', async (t) => {
  const app = path.join(work, 'myapp');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'start.sh'), '#!/bin/sh\necho started\n', { mode: 0o750 });
  fs.writeFileSync(path.join(app, 'data.txt'), 'data\n', { mode: 0o600 });
  const zip = path.join(work, 'boxer.zip');
  const p = boxer(['lambda', 'package', '--out', zip, '--include', app], process.env);
  t.is((await p.exited).code, 0, p.err());
  const m = /Boxer itself: ([\d.]+) MB zipped \(under/.exec(p.out());
  t.truthy(m, p.out());
  t.log(p.out().trim());
  t.true(Number(m![1]) * 1024 * 1024 <= BOXER_MAX_ZIP_BYTES);

  const entries = listing(zip);
  t.is(entries.get('index.js'), '-rw-r--r--');
  t.is(entries.get('bin/boxer'), '-rwxr-xr-x');
  for (const f of NATIVE) t.is(entries.get(f), '-rwxr-xr-x', f);
  t.is(entries.get('app/myapp/start.sh'), '-rwxr-xr-x', 'an executable of --include keeps its x bits, readable by all');
  t.is(entries.get('app/myapp/data.txt'), '-rw-r--r--', 'Lambda runs the code as another user: every file is readable');
  for (const [name, mode] of entries) t.true(mode === '-rw-r--r--' || mode === '-rwxr-xr-x', `${name} ${mode}`);
  const names = [...entries.keys()];
  t.true(names.includes('dist/src/lambda/handler.js') && names.includes('dist/src/cli/main.js'));
  for (const dep of ['cbor-x', 'libsodium-wrappers', 'libsodium', 'yargs']) t.true(names.some((n) => n.startsWith(`node_modules/${dep}/`)), dep);
  for (const no of ['ava', 'typescript', 'node-addon-api', 'yazl', '@aws-sdk', 'cbor-extract', 'aws-lambda-ric', '@types']) {
    t.false(names.some((n) => n.startsWith(`node_modules/${no}/`)), `${no} is not in the zip`);
  }
  t.false(names.some((n) => n.startsWith('dist/test/') || n.startsWith('overlay/') || n.endsWith('.map') || n.endsWith('.ts')));

  // Unpacked elsewhere, with no node_modules above it and no NODE_PATH, index.js loads on its own.
  const code = await unpack(zip, work);
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(code)}); console.log(typeof m.handler)`], {
    encoding: 'utf8',
    cwd: '/',
    env: { PATH: process.env.PATH },
  });
  t.is(r.stdout.trim(), 'function', r.stderr);
  t.is(fs.statSync(path.join(code, 'app/myapp/start.sh')).mode & 0o777, 0o755);

  // A wrong --include is refused with what to give, and no zip is left behind.
  const bad = boxer(['lambda', 'package', '--out', path.join(work, 'bad.zip'), '--include', path.join(work, 'missing')], process.env);
  t.is((await bad.exited).code, 64);
  t.regex(bad.err(), /--include .*missing: not a directory \(give the directory of your program/);
  t.false(fs.existsSync(path.join(work, 'bad.zip')));
});

test('both architectures: native parts for that machine, symbol versions within Amazon Linux 2023', async (t) => {
  for (const arch of LAMBDA_ARCHES) {
    const zip = path.join(work, `boxer-${arch}.zip`);
    const p = boxer(['lambda', 'package', '--out', zip, '--arch', arch], process.env);
    t.is((await p.exited).code, 0, p.err());
    const code = await unpack(zip, work);
    for (const f of NATIVE) {
      const file = path.join(code, f);
      t.is(fs.readFileSync(file).readUInt16LE(18), MACHINE[arch], `${arch} ${f} is built for ${arch}`);
      const versions = neededVersions(file);
      t.true(versions.some((v) => v.startsWith('GLIBC_')), `${f}: readelf lists its glibc versions`);
      for (const v of versions) {
        const [name, ver] = [v.slice(0, v.indexOf('_')), v.slice(v.indexOf('_') + 1)];
        t.true(cmpVersion(ver, LIMITS[name]) <= 0, `${arch} ${f} needs ${v}, above ${name}_${LIMITS[name]} (Amazon Linux 2023)`);
      }
    }
  }
});

if (!fs.existsSync(QEMU)) console.log(`arm64 unit tests not run: ${QEMU} is not installed (Debian package qemu-user-static)`);
(fs.existsSync(QEMU) ? test : test.skip)('the shim C unit tests built for arm64 pass under qemu-user', (t) => {
  const dir = path.join(ROOT, 'native/out/lambda/arm64/test');
  const tests = fs.readdirSync(dir).filter((f) => f.startsWith('test_'));
  t.true(tests.length >= 5, `the arm64 unit tests are built (${tests.join(', ')})`);
  for (const name of tests) {
    const r = spawnSync(QEMU, ['-L', '/usr/aarch64-linux-gnu', path.join(dir, name)], { encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, `${name} under qemu-aarch64: ${r.stdout}${r.stderr}`);
    t.regex(r.stdout + r.stderr, /\d+ checks, 0 failed/, name);
  }
});
