/**
 * The lab's contact with the host system: locating the tools it calls (`ip`, `nft`, `tc`, `sysctl`,
 * `setpriv`), running them with a bound on time, the prerequisite check (privileges, tools) with instructions a
 * person can follow, the unprivileged function user, and the check that this user can read the project.
 */

import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Bound on one administrative command (`ip`, `nft`, `tc`, `sysctl`): they return in milliseconds; ten
 * seconds means the kernel or a lock is stuck, and the lab fails instead of hanging.
 */
export const COMMAND_TIMEOUT_MS = 10_000;
/** Output kept from one administrative command (`nft list ruleset` of a busy gateway is the largest). */
const OUTPUT_LIMIT_BYTES = 16 << 20;
/** The unprivileged user functions run as, created by .ci/setup (or by the lab itself when root). */
export const FUNCTION_USER = 'boxerfn';
/** Where tools live on Debian; a root shell's PATH does not always have the sbin directories. */
const TOOL_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
/** PATH given to processes spawned in the lab (they do not inherit the caller's, which may be root's). */
export const LAB_PATH = TOOL_DIRS.join(':');

/** Linux capability bits (include/uapi/linux/capability.h). */
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21; // `ip netns add` mounts the namespace file

/** Tools the lab needs, with the Debian package that provides each. */
const REQUIRED_TOOLS: { tool: string; pkg: string; why: string }[] = [
  { tool: 'ip', pkg: 'iproute2', why: 'namespaces, veths, bridges' },
  { tool: 'tc', pkg: 'iproute2', why: 'rate limits (tbf)' },
  { tool: 'nft', pkg: 'nftables', why: 'the NAT gateways, stateful filtering, loss' },
  { tool: 'sysctl', pkg: 'procps', why: 'conntrack timeouts, port ranges, forwarding' },
  { tool: 'setpriv', pkg: 'util-linux', why: 'running functions as an unprivileged user' },
];

export class LabCommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    detail: string,
  ) {
    super(`${command}: ${detail}${stderr ? `: ${stderr.trim()}` : ''}`);
    this.name = 'LabCommandError';
  }
}

/**
 * Absolute path of a system tool, or undefined. Only the system directories are searched, never $PATH:
 * under `npx`, node_modules/.bin comes first and holds an unrelated `nft` (@vercel/nft, an ava dependency).
 */
export function findTool(name: string): string | undefined {
  for (const d of TOOL_DIRS) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

const toolCache = new Map<string, string>();
/** Absolute path of a tool the prerequisite check has vouched for; throws a clear error otherwise. */
export function tool(name: string): string {
  let p = toolCache.get(name);
  if (!p) {
    p = findTool(name);
    if (!p) throw new LabCommandError(name, '', 'not found (run `boxer lab status` for what the lab needs)');
    toolCache.set(name, p);
  }
  return p;
}

function describe(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(' ');
}

/** Runs an administrative command; resolves with stdout, rejects with a LabCommandError naming it. */
export function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tool(cmd),
      args,
      { timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: OUTPUT_LIMIT_BYTES, env: { ...process.env, PATH: LAB_PATH } },
      (err, stdout, stderr) => {
        if (err) {
          const detail = err.killed ? `timed out after ${COMMAND_TIMEOUT_MS} ms` : `exit ${err.code ?? err.signal}`;
          reject(new LabCommandError(describe(cmd, args), String(stderr), detail));
        } else resolve(String(stdout));
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Synchronous variant, for teardown from `process.on('exit')`. Returns undefined on failure. */
export function runSync(cmd: string, args: readonly string[]): string | undefined {
  try {
    return execFileSync(tool(cmd), args, {
      timeout: COMMAND_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: LAB_PATH },
    }).toString();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- prerequisites

export type PrerequisiteResult = { ok: true } | { ok: false; reason: string };

function effectiveCaps(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt('0x' + m[1]) : 0n;
  } catch {
    return 0n;
  }
}

/**
 * Can a lab be built here? Checks privileges (root, or CAP_NET_ADMIN and CAP_SYS_ADMIN) and the tools, and
 * says exactly what is missing and how to get it. It does not need iptables: every rule is nftables.
 */
export function checkLabPrerequisites(): PrerequisiteResult {
  const reasons: string[] = [];
  if (process.platform !== 'linux') return { ok: false, reason: 'the lab needs Linux network namespaces' };
  const caps = effectiveCaps();
  const has = (bit: number) => (caps & (1n << BigInt(bit))) !== 0n;
  if (!(process.getuid?.() === 0 || (has(CAP_NET_ADMIN) && has(CAP_SYS_ADMIN))))
    reasons.push('the emulated NATs need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN): run as root, e.g. `sudo boxer lab up`');
  const missing = REQUIRED_TOOLS.filter((t) => !findTool(t.tool));
  if (missing.length) {
    const pkgs = [...new Set(missing.map((t) => t.pkg))];
    reasons.push(
      `missing ${missing.map((t) => `\`${t.tool}\` (${t.why})`).join(', ')}: install with \`apt-get install ${pkgs.join(' ')}\``,
    );
  }
  if (!fs.existsSync('/proc/sys/net/netfilter') && reasons.length === 0)
    reasons.push('the kernel has no netfilter connection tracking (/proc/sys/net/netfilter is missing)');
  return reasons.length ? { ok: false, reason: reasons.join('; ') } : { ok: true };
}

// ---------------------------------------------------------------- the function user

export interface UserIds {
  uid: number;
  gid: number;
}

function lookupUser(name: string): UserIds | undefined {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    /* fall through */
  }
  return undefined;
}

/** The function user's ids; creates the user (as .ci/setup does) when it is missing and we are root. */
export function ensureFunctionUser(): UserIds {
  let ids = lookupUser(FUNCTION_USER);
  if (!ids && process.getuid?.() === 0) {
    const useradd = findTool('useradd');
    if (useradd) {
      try {
        execFileSync(useradd, ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', FUNCTION_USER], {
          stdio: 'ignore',
          timeout: COMMAND_TIMEOUT_MS,
        });
      } catch {
        /* raced with another lab creating it, or failed: checked below */
      }
    }
    ids = lookupUser(FUNCTION_USER);
  }
  if (!ids)
    throw new LabCommandError(
      'useradd',
      '',
      `the user ${FUNCTION_USER} is missing; create it with \`useradd --system --no-create-home --shell /usr/sbin/nologin ${FUNCTION_USER}\``,
    );
  return ids;
}

/** The project root: dist/overlay/sys.js -> ../.. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/**
 * Paths a function must be able to read for Boxer to run in it. An unreadable LD_PRELOAD library is
 * silently ignored by the dynamic loader, so tests would run without the shim and not know it.
 */
export function projectPathsToCheck(root: string = PROJECT_ROOT): string[] {
  const paths = [root, path.join(root, 'dist'), path.join(root, 'node_modules'), path.join(root, 'bin', 'boxer')];
  const shim = path.join(root, 'native', 'out', 'libboxer-shim.so');
  if (fs.existsSync(shim)) paths.push(shim);
  return paths.filter((p) => fs.existsSync(p));
}

/** Returns the paths among `paths` that the function user cannot read (directories: read and search). */
export function unreadableBy(ids: UserIds, paths: string[]): string[] {
  if (paths.length === 0) return [];
  const script = 'for p; do if [ -d "$p" ]; then [ -r "$p" ] && [ -x "$p" ] || echo "$p"; else [ -r "$p" ] || echo "$p"; fi; done';
  const out = execFileSync(
    tool('setpriv'),
    [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--', '/bin/sh', '-c', script, 'sh', ...paths],
    { timeout: COMMAND_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' },
  ).toString();
  return out.split('\n').filter(Boolean);
}

/** The readability check as a message, or undefined when everything is readable. */
export function readabilityProblem(ids: UserIds, root: string = PROJECT_ROOT): string | undefined {
  const bad = unreadableBy(ids, projectPathsToCheck(root));
  if (bad.length === 0) return undefined;
  return (
    `the function user ${FUNCTION_USER} cannot read ${bad.join(', ')}; functions could not run Boxer ` +
    `(and an unreadable LD_PRELOAD shim is silently ignored). Make the project world-readable, e.g. ` +
    `\`chmod -R a+rX ${root}\`, or put it outside a private directory such as /root`
  );
}

// ---------------------------------------------------------------- processes

/** Start time of a process (clock ticks since boot), to tell a live owner from a reused pid. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]); // field 22 of stat(5); fields here start at field 3
  } catch {
    return undefined;
  }
}

export function isProcessAlive(pid: number, startTime: number | undefined): boolean {
  const st = processStartTime(pid);
  return st !== undefined && (startTime === undefined || st === startTime);
}
