/**
 * Listening on a Unix stream socket under $TMPDIR, shared by the agent's local servers (control, shim):
 * a stale socket file is replaced, the new one is made readable by this user only, and removed on close.
 */
import net from 'node:net';
import fs from 'node:fs';

function unlinkQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    /* not there */
  }
}

export async function listenUnix(path: string, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  unlinkQuietly(path);
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  fs.chmodSync(path, 0o600);
  return server;
}

export async function closeUnix(server: net.Server | null, path: string): Promise<void> {
  if (server) await new Promise<void>((r) => server.close(() => r()));
  unlinkQuietly(path);
}
