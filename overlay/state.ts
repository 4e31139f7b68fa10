/**
 * Lab state files: one JSON file per lab under $TMPDIR/boxer-lab/<prefix>.json, written before anything is
 * created and removed after everything is gone. They let a later process find a lab (`boxer lab exec`,
 * `status`, `down`) and let `boxer lab down --stale` sweep labs whose owner process died.
 */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isProcessAlive } from './sys';
import { Topology } from './topology';

export const STATE_VERSION = 1;
/** Prefixes: `bx` and 4 random characters; custom ones must fit the same budget (see NODE_NAME_RE). */
export const PREFIX_RE = /^[a-z][a-z0-9]{1,5}$/;
const PREFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const RANDOM_PREFIX_CHARS = 4;

export interface GatewayKnobs {
  loss: number;
  rate?: string;
  idleTimeout?: number;
}

export interface LabState {
  version: typeof STATE_VERSION;
  prefix: string;
  /** The process whose exit makes the lab stale; null for a lab left running on purpose (`boxer lab up`). */
  owner: { pid: number; startTime?: number } | null;
  createdAt: string;
  topology: Topology;
  /** Everything created, recorded before creation: network namespaces and function directories. */
  namespaces: string[];
  tmpDirs: string[];
  knobs: Record<string, GatewayKnobs>;
}

export function stateDir(): string {
  return path.join(os.tmpdir(), 'boxer-lab');
}

export function statePath(prefix: string): string {
  return path.join(stateDir(), `${prefix}.json`);
}

export function randomPrefix(): string {
  const bytes = crypto.randomBytes(RANDOM_PREFIX_CHARS);
  let s = 'bx';
  for (const b of bytes) s += PREFIX_ALPHABET[b % PREFIX_ALPHABET.length];
  return s;
}

export function writeState(state: LabState): void {
  fs.mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
  const file = statePath(state.prefix);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Claims a prefix by creating its state file exclusively; false when another lab has it. */
export function claimState(state: LabState): boolean {
  fs.mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(statePath(state.prefix), JSON.stringify(state, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

export function readState(prefix: string): LabState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(statePath(prefix), 'utf8')) as LabState;
    return s.version === STATE_VERSION && s.prefix === prefix ? s : undefined;
  } catch {
    return undefined;
  }
}

export function removeState(prefix: string): void {
  fs.rmSync(statePath(prefix), { force: true });
}

export function listStates(): LabState[] {
  let names: string[];
  try {
    names = fs.readdirSync(stateDir());
  } catch {
    return [];
  }
  const out: LabState[] = [];
  for (const n of names) {
    const m = /^(.+)\.json$/.exec(n);
    if (!m || !PREFIX_RE.test(m[1])) continue;
    const s = readState(m[1]);
    if (s) out.push(s);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** A lab is stale when it had an owner process and that process is gone. */
export function isStale(state: LabState): boolean {
  return state.owner !== null && !isProcessAlive(state.owner.pid, state.owner.startTime);
}
