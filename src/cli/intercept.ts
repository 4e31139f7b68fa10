/**
 * Which way a member's program gets the virtual network (docs/seccomp.md): the preload shim (`LD_PRELOAD`,
 * cheaper: it runs inside the program) or the seccomp supervisor (`native/out/boxer-seccomp`, for programs the
 * shim cannot see: statically linked binaries, which have no dynamic loader, and Go programs, whose socket
 * calls are raw system calls even when they are dynamically linked). `auto` reads the command's ELF headers
 * before it starts: no PT_INTERP (static), or a Go section (`.go.buildinfo`, `.note.go.buildid`) -> seccomp;
 * anything else (a dynamic C/C++ program, a script) -> the shim. A wrapper script that execs a Go program
 * needs `--intercept seccomp`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BoxerError } from '../util/errors';

export type Intercept = 'shim' | 'seccomp';
export type InterceptChoice = 'auto' | Intercept;
export const INTERCEPT_CHOICES: readonly InterceptChoice[] = ['auto', 'shim', 'seccomp'];

export interface ElfFacts {
  /** A 64-bit little-endian ELF file. */
  elf: boolean;
  /** Has a PT_INTERP program header (loaded by the dynamic loader, which honours LD_PRELOAD). */
  dynamic: boolean;
  /** Built by Go (a `.go.buildinfo` or `.note.go.buildid` section). */
  go: boolean;
}

const PT_INTERP = 3;
const GO_SECTIONS = new Set(['.go.buildinfo', '.note.go.buildid']);
/** Bound on the section-name table read (a real one is a few hundred bytes). */
const SHSTRTAB_MAX = 1 << 20;

/** Reads `len` bytes at `pos` through `read` (a file, or a buffer in tests). */
type Reader = (pos: number, len: number) => Buffer;

/** The facts of an ELF image given by a reader; a file that is not a 64-bit little-endian ELF gives elf=false. */
export function elfFacts(read: Reader): ElfFacts {
  const none = { elf: false, dynamic: false, go: false };
  const h = read(0, 64);
  if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return none;
  const phoff = Number(h.readBigUInt64LE(32));
  const shoff = Number(h.readBigUInt64LE(40));
  const phentsize = h.readUInt16LE(54);
  const phnum = h.readUInt16LE(56);
  const shentsize = h.readUInt16LE(58);
  const shnum = h.readUInt16LE(60);
  const shstrndx = h.readUInt16LE(62);
  let dynamic = false;
  const ph = read(phoff, phentsize * phnum);
  for (let i = 0; i + 4 <= ph.length && i < phentsize * phnum; i += phentsize) if (ph.readUInt32LE(i) === PT_INTERP) dynamic = true;
  let go = false;
  if (shoff && shnum && shstrndx < shnum && shentsize >= 64) {
    const sh = read(shoff, shentsize * shnum);
    const str = sh.subarray(shstrndx * shentsize, shstrndx * shentsize + 64);
    if (str.length === 64) {
      const names = read(Number(str.readBigUInt64LE(24)), Math.min(Number(str.readBigUInt64LE(32)), SHSTRTAB_MAX));
      for (let i = 0; i + 64 <= sh.length; i += shentsize) {
        const at = sh.readUInt32LE(i);
        const end = names.indexOf(0, at);
        if (at < names.length && GO_SECTIONS.has(names.toString('latin1', at, end < 0 ? names.length : end))) go = true;
      }
    }
  }
  return { elf: true, dynamic, go };
}

/** The file a command name runs (a path, or the first executable match in PATH), or null. */
export function resolveCommand(cmd: string, pathVar = process.env.PATH ?? ''): string | null {
  const isExe = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return isExe(cmd) ? cmd : null;
  for (const dir of pathVar.split(':')) {
    const p = path.join(dir || '.', cmd);
    if (isExe(p)) return p;
  }
  return null;
}

/** The ELF facts of a file (elf=false if it cannot be read or is not ELF: a script). */
export function fileFacts(file: string): ElfFacts {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { elf: false, dynamic: false, go: false };
  }
  try {
    return elfFacts((pos, len) => {
      const b = Buffer.alloc(Math.max(0, len));
      const n = len > 0 ? fs.readSync(fd, b, 0, len, pos) : 0;
      return b.subarray(0, n);
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** The way CMD gets the virtual network, and why (for -v logs and the docs' wording). */
export function chooseIntercept(choice: InterceptChoice, cmd: string, pathVar?: string): { mode: Intercept; why: string } {
  if (!INTERCEPT_CHOICES.includes(choice)) throw new BoxerError('USAGE', `--intercept: expected auto, shim or seccomp, not '${choice}'`);
  if (choice !== 'auto') return { mode: choice, why: `--intercept ${choice}` };
  const file = resolveCommand(cmd, pathVar);
  if (!file) return { mode: 'shim', why: `${cmd} not found in PATH (the start fails with its own error)` };
  const f = fileFacts(file);
  if (!f.elf) return { mode: 'shim', why: `${file} is not a 64-bit ELF executable (a script): the shim` };
  if (f.go) return { mode: 'seccomp', why: `${file} is a Go program (raw system calls): seccomp` };
  if (!f.dynamic) return { mode: 'seccomp', why: `${file} is statically linked (no dynamic loader): seccomp` };
  return { mode: 'shim', why: `${file} is dynamically linked: the shim` };
}
