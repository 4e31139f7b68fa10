/**
 * Boxer's native addon (node-addon-api): the socket operations the agent needs and Node.js cannot do itself.
 *
 * Errors: every function throws (connectWait rejects with) an `Error` whose `code` is the errno name
 * (`'ECONNREFUSED'`), whose `errno` is the positive errno number, and whose message names the failed call
 * and its arguments. Bad arguments throw with code `EINVAL` (`EBADF` for a negative or fractional fd).
 * Nothing here aborts the process. Loading fails with code `ENOADDON` when the addon is not built.
 *
 * Descriptors are plain numbers owned by the caller: close them with `close()` (or hand them to
 * `new net.Socket({ fd, readable: true, writable: true })`, which then owns them).
 */

export interface NativeError extends Error {
  /** errno name, e.g. 'ECONNREFUSED'. */
  code: string;
  /** positive errno number. */
  errno: number;
}

export interface SockAddr {
  address: string;
  port: number;
}

/**
 * A non-blocking, close-on-exec AF_INET TCP socket, with SO_REUSEADDR and SO_REUSEPORT set unless `reuse` is
 * false (then a bind to port 0 gets a port no other socket holds).
 */
export function tcpSocket(reuse?: boolean): number;
/** bind(2) to `ip:port` (IPv4 dotted quad; port 0 lets the kernel choose). */
export function bind(fd: number, ip: string, port: number): void;
/** getsockname(2) of an AF_INET socket. */
export function localAddress(fd: number): SockAddr;
/**
 * Starts a non-blocking connect(2) to `ip:port`. Returns true if connected at once (including a handshake
 * the kernel completed within the call, as on loopback), false if in progress (EINPROGRESS or EINTR); throws on an immediate failure (e.g. ECONNREFUSED on loopback, EADDRNOTAVAIL).
 * Both ends of a TCP simultaneous open call this, each bound to its own port, each toward the other.
 */
export function connectStart(fd: number, ip: string, port: number): boolean;
/**
 * Waits on the event loop (libuv poll handle + timer: no thread, never blocks) until the connect started by
 * connectStart completes. Resolves once connected; rejects with the socket's SO_ERROR errno (ECONNREFUSED,
 * ECONNRESET, EHOSTUNREACH, ...), ETIMEDOUT when timeoutMs passes first (the fd stays open, the kernel's
 * connect goes on), ENOTCONN when no connect was started, EALREADY when a wait on fd is pending,
 * ECANCELED when `close(fd)` of this module closed fd meanwhile, EEXIST when the event loop already watches
 * fd (e.g. a net.Socket owns it). Do not wrap fd in net.Socket before the promise settles.
 */
export function connectWait(fd: number, timeoutMs: number): Promise<void>;
/** SO_LINGER {on, 0}: a later close(fd) sends RST instead of FIN. */
export function setLinger0(fd: number): void;
/**
 * SO_KEEPALIVE with TCP_KEEPIDLE `idleS`, TCP_KEEPINTVL `intvlS`, TCP_KEEPCNT `count`, and TCP_USER_TIMEOUT
 * `userTimeoutMs`: the socket errors with ETIMEDOUT once its far end has been silent past them (idle, or with
 * data unacknowledged). Every argument a positive integer.
 */
export function tcpLiveness(fd: number, idleS: number, intvlS: number, count: number, userTimeoutMs: number): void;
/** Cancels a pending connectWait on fd (rejecting it with ECANCELED), then close(2). */
export function close(fd: number): void;
/**
 * One sendmsg(2) on the Unix stream socket `unixFd` of `data` (non-empty) with `fd` attached as SCM_RIGHTS
 * to its first byte. Returns the number of bytes sent (>= 1); the caller must write any remainder itself
 * after them, in order. Never blocks (MSG_DONTWAIT): throws EAGAIN when the socket buffer is full. `fd`
 * stays open in the caller (the receiver gets its own descriptor). For a net.Socket, pass
 * `(sock as any)._handle.fd` and call only when `sock.writableLength === 0`, so the bytes keep their order.
 */
export function sendFd(unixFd: number, fd: number, data: Buffer): number;
/**
 * One recvmsg(2) of up to maxBytes (default 4096) from `unixFd`: `fd` is the received descriptor
 * (close-on-exec) or -1 if none came; `data` is empty at end of stream. Blocks if unixFd is blocking;
 * throws EAGAIN if it is non-blocking and nothing is there. Extra descriptors are closed.
 */
export function recvFd(unixFd: number, maxBytes?: number): { fd: number; data: Buffer };
/** SO_PEERCRED of a connected Unix socket: the peer process's pid, uid, gid (as of its connect). */
export function peerCred(unixFd: number): { pid: number; uid: number; gid: number };
/**
 * Makes this process non-dumpable (prctl PR_SET_DUMPABLE 0): other processes of the same user (the member's
 * program) can no longer read its /proc/PID/environ, mem or fd, nor ptrace it; no core dump. True when it took.
 */
export function hideProcess(): boolean;
/** Overwrites the value of environment variable `name` in this process's environment block, then unsets it; returns how many were found. */
export function scrubEnv(name: string): number;
/** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected blocking descriptors. */
export function socketPair(): [number, number];

/** What a finished splice() moved, and whether it ended in a reset (an error on either side, or an abort). */
export interface SpliceResult {
  aToB: number;
  bToA: number;
  reset: boolean;
}
/**
 * Relays two connected TCP sockets in the kernel (splice(2) through a pipe per direction, on two threads of
 * its own; no byte passes through JavaScript) until both directions ended. Takes its own duplicates of fdA and
 * fdB: close yours at once (destroy() a net.Socket) and never read them again. `headToA`/`headToB`: bytes
 * already read from the other side, written first. EOF on one side half-closes the other (shutdown
 * SHUT_WR); an error on either side resets both (SO_LINGER 0). Resolves once both sockets are closed; keeps
 * the event loop alive meanwhile (spliceAbortAll() ends them all). Throws EBADF/EINVAL on bad arguments, EMFILE/EAGAIN when a descriptor or
 * thread cannot be had (nothing taken then).
 */
export function splice(fdA: number, fdB: number, headToA?: Buffer, headToB?: Buffer): Promise<SpliceResult>;
/** Resets every splice() in progress (the agent is stopping). Returns how many. */
export function spliceAbortAll(): number;
/** How many splice() relays are in progress. */
export function spliceActive(): number;

/** Absolute path of the LD_PRELOAD shim library (native/out/libboxer-shim.so). */
export const SHIM_PATH: string;
/** Absolute path of the seccomp supervisor (native/out/boxer-seccomp: `boxer-seccomp -- CMD`, docs/seccomp.md). */
export const SECCOMP_PATH: string;
/** Absolute path of the addon binary. */
export const ADDON_PATH: string;
