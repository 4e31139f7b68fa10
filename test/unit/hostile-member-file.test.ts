// Disk full in $TMPDIR while the member list changes: the agent keeps running, says so once, keeps the last
// good member file (never a half-written one), and brings it up to date as soon as a write succeeds again.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { MemberServices, type MemberSource } from '../../src/cli/member';
import { writeFileAtomic } from '../../src/util/paths';
import { setSink } from '../../src/util/log';
import type { MemberInfo } from '../../src/wire/messages';
import { MEMBER_FILE_RETRY_MS } from '../../src/constants';

const logs: string[] = [];
test.before(() => {
  process.env.TMPDIR = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-memberfile-'));
  setSink((l) => logs.push(l));
});

function member(id: number): MemberInfo {
  return { id, name: `node-${id}`, addr: `100.96.0.${id}`, services: [], ext: null, priv: [], nat: 'open', key: new Uint8Array(32) } as unknown as MemberInfo;
}

test('ENOSPC on the member file write is logged once, the last good file stays, and it catches up', async (t) => {
  const members = [member(1)];
  const events = new EventEmitter();
  const view: MemberSource = { self: null, list: () => members, on: ((ev: string, fn: () => void) => events.on(ev, fn)) as MemberSource['on'], statusExtra: () => ({}), ping: () => Promise.reject(new Error('no links here')), closeLinks: () => 0 };
  let full = false;
  let attempts = 0;
  const write = (file: string, text: string) => {
    attempts++;
    if (full) {
      // What the kernel does: the temporary file is created, the write fails half-way.
      fs.writeFileSync(`${file}.${process.pid}.tmp`, text.slice(0, 3));
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
    writeFileAtomic(file, text);
  };
  const local = new MemberServices(view, '127.0.0.1:1', {
    write: (f, txt) => {
      try {
        write(f, txt);
      } catch (e) {
        fs.rmSync(`${f}.${process.pid}.tmp`, { force: true });
        throw e;
      }
    },
  });
  t.is(fs.readFileSync(local.nodesFile, 'utf8'), '1 100.96.0.1 node-1\n');
  full = true;
  for (let i = 2; i <= 5; i++) {
    members.push(member(i));
    t.notThrows(() => events.emit('change'));
  }
  await local.flush(); // the writer's attempt (writes are batched and asynchronous)
  t.is(fs.readFileSync(local.nodesFile, 'utf8'), '1 100.96.0.1 node-1\n', 'the last good file stays');
  t.is(local.nodesFileError, 'ENOSPC');
  t.is((local.status() as { nodesFileError: string }).nodesFileError, 'ENOSPC');
  t.is(logs.filter((l) => /cannot write the member file/.test(l)).length, 1, 'said once, not per change');
  t.false(fs.readdirSync(path.dirname(local.nodesFile)).some((f) => f.endsWith('.tmp')), 'no half-written file left');
  full = false;
  const before = attempts;
  await new Promise((r) => setTimeout(r, MEMBER_FILE_RETRY_MS * 2.5));
  t.true(attempts > before, 'retried without a change');
  t.is(fs.readFileSync(local.nodesFile, 'utf8').split('\n').filter(Boolean).length, 5, 'caught up');
  t.is(local.nodesFileError, null);
  await local.close();
});

test('writeFileAtomic removes its temporary file when the write fails', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-atomic-'));
  const file = path.join(dir, 'f');
  writeFileAtomic(file, 'good\n');
  fs.mkdirSync(`${file}.${process.pid}.tmp.d`);
  // A directory where the rename must go: rename fails after the temporary file was written.
  fs.rmSync(file);
  fs.mkdirSync(file);
  fs.writeFileSync(path.join(file, 'x'), '');
  t.throws(() => writeFileAtomic(file, 'new\n'));
  t.false(fs.existsSync(`${file}.${process.pid}.tmp`));
});
