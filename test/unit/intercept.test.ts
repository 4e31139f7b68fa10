/**
 * How `boxer run` chooses between the preload shim and the seccomp supervisor (src/cli/intercept.ts): ELF
 * images built in memory (static, dynamic, Go, not ELF, truncated), real files (/bin/sh, a script), and the
 * explicit choices.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseIntercept, elfFacts } from '../../src/cli/intercept';

/** A 64-bit little-endian ELF image with the given program header types and section names. */
function image(phTypes: number[], sections: string[]): Buffer {
  const names = Buffer.from(['', ...sections, '.shstrtab'].join('\0') + '\0', 'latin1');
  const phoff = 64;
  const shoff = phoff + 56 * phTypes.length;
  const shnum = sections.length + 2; // null section, the named ones, .shstrtab
  const strOff = shoff + 64 * shnum;
  const b = Buffer.alloc(strOff + names.length);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // 64-bit
  b[5] = 1; // little-endian
  b.writeBigUInt64LE(BigInt(phoff), 32);
  b.writeBigUInt64LE(BigInt(shoff), 40);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(phTypes.length, 56);
  b.writeUInt16LE(64, 58);
  b.writeUInt16LE(shnum, 60);
  b.writeUInt16LE(shnum - 1, 62);
  phTypes.forEach((t, i) => b.writeUInt32LE(t, phoff + 56 * i));
  let at = 1;
  [...sections, '.shstrtab'].forEach((name, i) => {
    const sh = shoff + 64 * (i + 1);
    b.writeUInt32LE(at, sh);
    at += name.length + 1;
    if (name === '.shstrtab') {
      b.writeBigUInt64LE(BigInt(strOff), sh + 24);
      b.writeBigUInt64LE(BigInt(names.length), sh + 32);
    }
  });
  names.copy(b, strOff);
  return b;
}
const reader = (b: Buffer) => (pos: number, len: number) => b.subarray(pos, pos + len);

test('ELF facts: static, dynamic, Go (static or dynamic), not ELF, truncated', (t) => {
  const PT_LOAD = 1;
  const PT_INTERP = 3;
  t.deepEqual(elfFacts(reader(image([PT_LOAD], ['.text']))), { elf: true, dynamic: false, go: false });
  t.deepEqual(elfFacts(reader(image([PT_INTERP, PT_LOAD], ['.text', '.dynamic']))), { elf: true, dynamic: true, go: false });
  t.deepEqual(elfFacts(reader(image([PT_LOAD], ['.text', '.go.buildinfo']))), { elf: true, dynamic: false, go: true });
  t.deepEqual(elfFacts(reader(image([PT_INTERP], ['.note.go.buildid', '.text']))), { elf: true, dynamic: true, go: true });
  t.deepEqual(elfFacts(reader(Buffer.from('#!/bin/sh\necho hi\n'))), { elf: false, dynamic: false, go: false });
  const cut = image([PT_INTERP], ['.go.buildinfo']).subarray(0, 100); // section headers missing
  t.deepEqual(elfFacts(reader(cut)), { elf: true, dynamic: true, go: false });
});

test('choice: auto reads the file; explicit choices win; a bad choice is a usage error', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-intercept-'));
  try {
    const script = path.join(dir, 'start.sh');
    fs.writeFileSync(script, '#!/bin/sh\nexec true\n', { mode: 0o755 });
    const staticBin = path.join(dir, 'server');
    fs.writeFileSync(staticBin, image([1], ['.text']), { mode: 0o755 });
    const goBin = path.join(dir, 'gosrv');
    fs.writeFileSync(goBin, image([3, 1], ['.go.buildinfo']), { mode: 0o755 });
    t.is(chooseIntercept('auto', script).mode, 'shim');
    t.is(chooseIntercept('auto', 'server', dir).mode, 'seccomp', 'found in PATH, statically linked');
    t.regex(chooseIntercept('auto', goBin).why, /Go program/);
    t.is(chooseIntercept('auto', goBin).mode, 'seccomp', 'a dynamically linked Go program still makes raw system calls');
    t.is(chooseIntercept('auto', '/bin/sh').mode, 'shim');
    t.is(chooseIntercept('auto', 'no-such-command-here', dir).mode, 'shim');
    t.is(chooseIntercept('seccomp', script).mode, 'seccomp');
    t.is(chooseIntercept('shim', staticBin).mode, 'shim');
    t.throws(() => chooseIntercept('both' as never, script), { message: /--intercept: expected auto, shim or seccomp/ });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
