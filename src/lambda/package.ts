/**
 * `boxer lambda package`: one zip for the `nodejs22.x` runtime (handler `index.handler`): the compiled agent,
 * its production dependencies, the native addon, the preload shim and the seccomp supervisor built for the architecture
 * (native/out/lambda/ARCH, see native/Makefile), and the user's program from `--include DIR` under `app/DIR`.
 * Built with yazl; every file is mode 644 or 755 (Lambda runs the code as another user: all must be readable),
 * with a fixed time stamp, so the same inputs give the same zip.
 *
 * What is left out, and why (docs/lambda.md#package): build-time dependencies; optional native dependencies
 * (cbor-extract: cbor-x works without it, and one zip would need a prebuilt per architecture); the AWS SDK v3,
 * which the nodejs22.x runtime provides (`withAwsSdk` bundles the two clients the handler uses).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import yazl from 'yazl';
import { BoxerError } from '../util/errors';

export type LambdaArch = 'x86_64' | 'arm64';
export const LAMBDA_ARCHES: readonly LambdaArch[] = ['x86_64', 'arm64'];

/** The paper's Boxer added 1.4 MB compressed to a function; ours must stay under this (the test holds it). */
export const BOXER_MAX_ZIP_BYTES = 2 * 1024 * 1024;
/** Lambda's limit on a function's unzipped code (with its layers). */
export const LAMBDA_MAX_UNZIPPED_BYTES = 250 * 1024 * 1024;
/** Time stamp of every entry (a fixed one: reproducible zips). */
const ZIP_MTIME = new Date('2020-01-01T00:00:00Z');
const MODE_FILE = 0o100644;
const MODE_EXEC = 0o100755;

/** Root dependencies a function never loads. */
const BUILD_ONLY: Record<string, string> = {
  'node-addon-api': 'C++ headers, used only to build the addon',
  yazl: 'writes this zip; not used inside a function',
};
/** The AWS SDK clients the handler uses (src/lambda/secret.ts); bundled only with `withAwsSdk`. */
export const AWS_SDK_CLIENTS = ['@aws-sdk/client-secrets-manager', '@aws-sdk/client-ssm'];
/** Files inside dependencies that nothing loads at run time. */
const PRUNE_RE = /(^|\/)(test|tests|__tests__|benchmark|benchmarks|example|examples|docs?|\.github)(\/|$)|\.(md|markdown|map|ts|cts|mts|tsbuildinfo)$|(^|\/)(\.npmignore|\.eslintrc[^/]*|\.travis\.yml|tsconfig\.json)$/;

export type Section = 'boxer' | 'dependencies' | 'aws-sdk' | 'native' | 'app';

export interface Entry {
  /** Path inside the zip. */
  name: string;
  /** Source file, or the content itself. */
  from: string | Buffer;
  mode: number;
  section: Section;
}

export interface PackageOptions {
  out: string;
  arch: LambdaArch;
  /** Directories added under app/<basename>/. */
  include?: string[];
  /** Bundle the AWS SDK clients instead of relying on the runtime's. */
  withAwsSdk?: boolean;
  /** The Boxer checkout (default: the one this file runs from). */
  root?: string;
}

export interface SectionSize {
  files: number;
  bytes: number;
  /** Deflated size (as yazl writes it) plus each entry's zip headers. */
  zipBytes: number;
}

export interface PackageReport {
  out: string;
  arch: LambdaArch;
  /** Size of the zip file. */
  zipBytes: number;
  unzippedBytes: number;
  /** Boxer itself: everything but app/ and a bundled AWS SDK (must stay under BOXER_MAX_ZIP_BYTES). */
  boxerZipBytes: number;
  sections: Record<Section, SectionSize>;
  /** Top-level dependency packages in node_modules/ (without the AWS SDK's). */
  dependencies: string[];
  /** Top-level packages of the bundled AWS SDK (empty without withAwsSdk). */
  sdkPackages: string[];
  entries: Entry[];
}

const ROOT = path.resolve(__dirname, '../../..');

/** The native files for an architecture, and how to get them when missing. */
export function nativeFiles(root: string, arch: LambdaArch): { addon: string; shim: string; seccomp: string } {
  const dir = path.join(root, 'native', 'out', 'lambda', arch);
  const files = { addon: path.join(dir, 'boxer_native.node'), shim: path.join(dir, 'libboxer-shim.so'), seccomp: path.join(dir, 'boxer-seccomp') };
  for (const f of Object.values(files)) {
    if (!fs.existsSync(f)) {
      const tools = arch === 'arm64' ? 'Debian packages gcc-aarch64-linux-gnu and g++-aarch64-linux-gnu' : 'gcc and g++';
      throw new BoxerError('USAGE', `no ${arch} build of the native parts (${path.relative(root, f)}): install ${tools}, then run \`npm run build:native\``);
    }
  }
  return files;
}

/** Finds a dependency the way Node's require does: node_modules of `from` and of each parent, up to root. */
function resolvePackage(name: string, from: string, root: string): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const cand = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(cand, 'package.json'))) return cand;
    if (dir === root || path.dirname(dir) === dir) return null;
  }
}

interface PackageJson {
  name: string;
  version?: string;
  dependencies?: Record<string, string>;
}
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as PackageJson;

/**
 * The production dependency closure of `names` (their `dependencies`, not optional or peer ones): package
 * directory by the path it takes under the zip's root (node_modules/a, node_modules/a/node_modules/b).
 */
export function dependencyClosure(root: string, names: string[]): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (name: string, from: string) => {
    const dir = resolvePackage(name, from, root);
    if (!dir) throw new BoxerError('USAGE', `the dependency ${name} is not installed (needed from ${path.relative(root, from) || 'the package root'}): run npm ci`);
    const rel = path.relative(root, dir);
    if (found.has(rel)) return;
    found.set(rel, dir);
    for (const dep of Object.keys(readJson(path.join(dir, 'package.json')).dependencies ?? {})) visit(dep, dir);
  };
  for (const n of names) visit(n, root);
  return found;
}

/** Every file under dir (following links to files; each real directory once), as paths relative to dir. */
function walk(dir: string, skip?: RegExp): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const rec = (d: string, rel: string) => {
    const real = fs.realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of fs.readdirSync(d).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip?.test(r)) continue;
      const full = path.join(d, name);
      const st = fs.statSync(full, { throwIfNoEntry: false });
      if (!st) continue; // a dangling link
      if (st.isDirectory()) {
        if (name !== 'node_modules' || rel !== '') rec(full, r);
      } else if (st.isFile()) out.push(r);
    }
  };
  rec(dir, '');
  return out;
}

const modeOf = (file: string) => ((fs.statSync(file).mode & 0o111) !== 0 ? MODE_EXEC : MODE_FILE);

/** What goes into the zip (without writing it). */
export function packageEntries(opts: Omit<PackageOptions, 'out'>): { entries: Entry[]; dependencies: string[]; sdkPackages: string[] } {
  const root = opts.root ?? ROOT;
  const dist = path.join(root, 'dist');
  if (!fs.existsSync(path.join(dist, 'src', 'lambda', 'handler.js'))) throw new BoxerError('USAGE', `no compiled agent in ${dist}: run \`npm run build\` first`);
  const entries: Entry[] = [];
  const pkg = readJson(path.join(root, 'package.json'));

  entries.push({
    name: 'index.js',
    from: Buffer.from("'use strict';\n// Lambda's entry, handler index.handler: see dist/src/lambda/handler.js (docs/lambda.md).\nmodule.exports = require('./dist/src/lambda/handler.js');\n"),
    mode: MODE_FILE,
    section: 'boxer',
  });
  entries.push({ name: 'package.json', from: Buffer.from(JSON.stringify({ name: 'boxer-lambda', version: pkg.version, private: true, type: 'commonjs' }, null, 2) + '\n'), mode: MODE_FILE, section: 'boxer' });
  entries.push({ name: 'bin/boxer', from: path.join(root, 'bin', 'boxer'), mode: MODE_EXEC, section: 'boxer' });
  for (const f of walk(path.join(dist, 'src'))) if (f.endsWith('.js')) entries.push({ name: `dist/src/${f}`, from: path.join(dist, 'src', f), mode: MODE_FILE, section: 'boxer' });
  entries.push({ name: 'dist/native/index.js', from: path.join(dist, 'native', 'index.js'), mode: MODE_FILE, section: 'boxer' });
  for (const f of ['index.js', 'package.json']) entries.push({ name: `native/${f}`, from: path.join(root, 'native', f), mode: MODE_FILE, section: 'native' });
  const nat = nativeFiles(root, opts.arch);
  // The same paths as in a checkout: native/index.js finds them there.
  entries.push({ name: 'native/build/Release/boxer_native.node', from: nat.addon, mode: MODE_EXEC, section: 'native' });
  entries.push({ name: 'native/out/libboxer-shim.so', from: nat.shim, mode: MODE_EXEC, section: 'native' });
  entries.push({ name: 'native/out/boxer-seccomp', from: nat.seccomp, mode: MODE_EXEC, section: 'native' });

  const rootDeps = Object.keys(pkg.dependencies ?? {}).filter((d) => !(d in BUILD_ONLY) && !d.startsWith('@aws-sdk/'));
  const deps = dependencyClosure(root, rootDeps);
  const sdk = opts.withAwsSdk ? dependencyClosure(root, AWS_SDK_CLIENTS) : new Map<string, string>();
  for (const k of deps.keys()) sdk.delete(k);
  for (const [closure, section] of [[deps, 'dependencies'], [sdk, 'aws-sdk']] as const) {
    for (const [rel, dir] of [...closure].sort()) {
      for (const f of walk(dir, PRUNE_RE)) {
        const full = path.join(dir, f);
        entries.push({ name: `${rel.split(path.sep).join('/')}/${f}`, from: full, mode: modeOf(full), section });
      }
    }
  }

  const apps = new Set<string>();
  for (const inc of opts.include ?? []) {
    const st = fs.statSync(inc, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new BoxerError('USAGE', `--include ${inc}: not a directory (give the directory of your program, e.g. --include ./myapp)`);
    const base = path.basename(path.resolve(inc));
    if (apps.has(base)) throw new BoxerError('USAGE', `--include ${inc}: two included directories are named ${base}; both would go to app/${base}`);
    apps.add(base);
    const files = walk(path.resolve(inc));
    if (files.length === 0) throw new BoxerError('USAGE', `--include ${inc}: the directory is empty`);
    for (const f of files) {
      const full = path.join(path.resolve(inc), f);
      entries.push({ name: `app/${base}/${f}`, from: full, mode: modeOf(full), section: 'app' });
    }
  }
  const topLevel = (m: Map<string, string>) => [...m.keys()].filter((k) => k.split(path.sep).filter((p) => p === 'node_modules').length === 1).map((k) => k.slice('node_modules/'.length)).sort();
  return { entries, dependencies: topLevel(deps), sdkPackages: topLevel(sdk) };
}

const content = (e: Entry) => (typeof e.from === 'string' ? fs.readFileSync(e.from) : e.from);

/** Builds the zip at opts.out (written whole, then renamed into place) and reports its size and contents. */
export async function buildPackage(opts: PackageOptions): Promise<PackageReport> {
  if (!LAMBDA_ARCHES.includes(opts.arch)) throw new BoxerError('USAGE', `--arch ${opts.arch}: expected one of ${LAMBDA_ARCHES.join(', ')}`);
  const { entries, dependencies, sdkPackages } = packageEntries(opts);
  const sections = Object.fromEntries((['boxer', 'native', 'dependencies', 'aws-sdk', 'app'] as Section[]).map((s) => [s, { files: 0, bytes: 0, zipBytes: 0 }])) as Record<Section, SectionSize>;
  const zip = new yazl.ZipFile();
  let unzipped = 0;
  for (const e of entries) {
    const data = content(e);
    unzipped += data.length;
    const s = sections[e.section];
    s.files++;
    s.bytes += data.length;
    // Local header (30) + central directory entry (46) + the name twice; yazl deflates at zlib's default level.
    s.zipBytes += zlib.deflateRawSync(data).length + 76 + 2 * Buffer.byteLength(e.name);
    zip.addBuffer(data, e.name, { mode: e.mode, mtime: ZIP_MTIME, compress: true });
  }
  if (unzipped > LAMBDA_MAX_UNZIPPED_BYTES) {
    throw new BoxerError('USAGE', `the package would unzip to ${mb(unzipped)}, above Lambda's ${mb(LAMBDA_MAX_UNZIPPED_BYTES)} limit: include less (--include), or put the program in a layer or a container image`);
  }
  const tmp = `${opts.out}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const ws = fs.createWriteStream(tmp, { mode: 0o644 });
    ws.on('error', reject);
    ws.on('close', () => resolve());
    zip.outputStream.on('error', reject).pipe(ws);
    zip.end();
  });
  fs.renameSync(tmp, opts.out);
  const zipBytes = fs.statSync(opts.out).size;
  return {
    out: opts.out,
    arch: opts.arch,
    zipBytes,
    unzippedBytes: unzipped,
    boxerZipBytes: sections.boxer.zipBytes + sections.native.zipBytes + sections.dependencies.zipBytes,
    sections,
    dependencies,
    sdkPackages,
    entries,
  };
}

export function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(2)} MB`;
}

/** The summary `boxer lambda package` prints. */
export function formatReport(r: PackageReport): string {
  const lines = [`${r.out}: ${mb(r.zipBytes)} (${mb(r.unzippedBytes)} unzipped), ${r.entries.length} files, ${r.arch}, runtime nodejs22.x, handler index.handler`];
  const what: Record<Section, string> = {
    boxer: 'Boxer (index.js, dist/src, bin/boxer)',
    native: `native addon, preload shim, seccomp supervisor (${r.arch})`,
    dependencies: `dependencies: ${r.dependencies.join(', ')}`,
    'aws-sdk': `AWS SDK clients, bundled (${r.sdkPackages.length} packages)`,
    app: 'your program (app/)',
  };
  for (const [s, v] of Object.entries(r.sections) as [Section, SectionSize][]) {
    if (v.files === 0) continue;
    lines.push(`  ${mb(v.zipBytes).padStart(9)} zipped ${mb(v.bytes).padStart(9)} ${String(v.files).padStart(5)} files  ${what[s]}`);
  }
  const over = r.boxerZipBytes > BOXER_MAX_ZIP_BYTES;
  lines.push(`  Boxer itself: ${mb(r.boxerZipBytes)} zipped (${over ? 'ABOVE' : 'under'} the ${mb(BOXER_MAX_ZIP_BYTES)} target)`);
  if (r.sections['aws-sdk'].files === 0) lines.push('  the AWS SDK v3 comes from the nodejs22.x runtime (--with-aws-sdk bundles it)');
  return lines.join('\n');
}
