// The layer rule of docs/architecture.md, checked on every import of src/ and overlay/ (static, type-only,
// dynamic import() and require()): each layer imports only from itself and the layers below it; the addon is
// loaded in one module; overlay/ (the lab) is reached only by `boxer lab` and `boxer demo`, lazily, and uses
// nothing of src/ but src/util.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';

// dist/test/unit -> the repository.
const ROOT = path.resolve(__dirname, '../../..');

/** Lowest first; a layer may import from its own and lower ones. */
const LAYERS: string[][] = [['constants', 'util'], ['wire', 'crypto'], ['channel'], ['traversal'], ['control'], ['vnet'], ['ipc'], ['cli', 'lambda']];

interface Import {
  file: string;
  line: number;
  target: string;
  /** Written as a static `import ... from` (not a lazy import() or require()). */
  isStatic: boolean;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Every relative import of a file, resolved to a path from the repository root. */
function importsOf(file: string): Import[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const out: Import[] = [];
  const patterns: Array<[RegExp, boolean]> = [
    [/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gms, true],
    [/^\s*import\s+'([^']+)'/gm, true],
    [/\bimport\(\s*'([^']+)'\s*\)/g, false],
    [/\brequire\(\s*'([^']+)'\s*\)/g, false],
    [/\brequire\(\s*path\.resolve\(__dirname,\s*'([^']+)'\s*\)\s*\)/g, false],
  ];
  for (const [re, isStatic] of patterns) {
    for (const m of text.matchAll(re)) {
      const spec = m[1];
      if (!spec.startsWith('.')) continue;
      // A path.resolve(__dirname, ...) is resolved from the compiled file, under dist/.
      const from = re.source.includes('__dirname') ? path.join('dist', path.dirname(file)) : path.dirname(file);
      const target = path.normalize(path.join(from, spec));
      out.push({ file, line: text.slice(0, m.index).split('\n').length, target, isStatic });
    }
  }
  return out;
}

function layerOf(p: string): number {
  const parts = p.split(path.sep);
  if (parts[0] !== 'src') return -1;
  const top = parts[1];
  return LAYERS.findIndex((l) => l.includes(top));
}

const all = [...sources('src'), ...sources('overlay')].flatMap(importsOf);
const where = (i: Import) => `${i.file}:${i.line} -> ${i.target}`;

test('the import reader sees the imports (every layer imports something; lazy ones are told apart)', (t) => {
  t.true(all.length > 200, `${all.length} imports`);
  t.true(all.some((i) => i.file === path.join('src', 'cli', 'main.ts') && !i.isStatic && i.target === path.join('src', 'cli', 'commands', 'run')));
  t.true(all.some((i) => i.file === path.join('src', 'util', 'native.ts') && i.target === 'native'), 'the addon require is seen');
});

test('every folder of src/ is in a layer', (t) => {
  const tops = fs.readdirSync(path.join(ROOT, 'src'));
  t.deepEqual(tops.filter((x) => layerOf(path.join('src', x, 'x')) < 0), []);
});

test('each layer imports only from itself and the layers below it', (t) => {
  const bad = all.filter((i) => i.file.startsWith('src') && i.target.startsWith('src') && layerOf(i.target) > layerOf(i.file));
  t.deepEqual(bad.map(where), []);
});

test('the native addon is loaded by src/util/native.ts alone', (t) => {
  const bad = all.filter((i) => i.file.startsWith('src') && (i.target === 'native' || i.target.startsWith('native' + path.sep)) && i.file !== path.join('src', 'util', 'native.ts'));
  t.deepEqual(bad.map(where), []);
});

test('overlay/ is loaded only lazily by `boxer lab` and `boxer demo`, and uses only src/util of src/', (t) => {
  const intoOverlay = all.filter((i) => i.file.startsWith('src') && i.target.startsWith('overlay'));
  const allowed = (i: Import) => (i.file === path.join('src', 'cli', 'main.ts') && !i.isStatic) || i.file === path.join('src', 'cli', 'commands', 'demo.ts');
  t.deepEqual(intoOverlay.filter((i) => !allowed(i)).map(where), []);
  const demo = all.filter((i) => i.target === path.join('src', 'cli', 'commands', 'demo'));
  t.true(demo.length > 0 && demo.every((i) => !i.isStatic), 'the demo command (which loads overlay/) is itself loaded lazily');
  const fromOverlay = all.filter((i) => i.file.startsWith('overlay') && i.target.startsWith('src') && !i.target.startsWith(path.join('src', 'util')));
  t.deepEqual(fromOverlay.map(where), []);
});
