// docs/protocol.md lists every control message type of src/wire/messages.ts (its `Message` union), and
// src/vnet/messages.ts's table lists every broker message kind of `VnetMessage`.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

/** The `t` (or `k`) values of a union of object types written `| { t: 'x'; ... }`. */
function kinds(source: string, union: string, field: string): string[] {
  const start = source.indexOf(`export type ${union} =`);
  if (start < 0) throw new Error(`no ${union} union`);
  const end = source.indexOf(';\n\n', start);
  return [...source.slice(start, end).matchAll(new RegExp(`\\{ ${field}: '([a-z-]+)'`, 'g'))].map((m) => m[1]);
}

test('every control message type is in docs/protocol.md', (t) => {
  const types = kinds(read('src/wire/messages.ts'), 'Message', 't');
  t.true(types.length >= 19, types.join(' '));
  const doc = read('docs/protocol.md');
  t.deepEqual(types.filter((k) => !new RegExp(`^\\| \`${k}\`( / \`\\w+\`)? \\|`, 'm').test(doc) && !new RegExp(`^\\| \`\\w+\` / \`${k}\` \\|`, 'm').test(doc)), []);
});

test('every broker message kind is in the table of src/vnet/messages.ts', (t) => {
  const src = read('src/vnet/messages.ts');
  const ks = kinds(src, 'VnetMessage', 'k');
  t.true(ks.length >= 6, ks.join(' '));
  t.deepEqual(ks.filter((k) => !src.includes(` * | \`${k}\` |`)), []);
});
