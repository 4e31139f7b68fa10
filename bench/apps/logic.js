/**
 * The stateless logic tier of the paper's microservice experiments (sections 6-7), the only code written for
 * them: an HTTP service in front of Redis (a cache) and PostgreSQL (the store), using real client libraries
 * (`redis`, node-redis; `pg`, node-postgres, a pool of PG_POOL connections). It runs unmodified natively, under
 * Boxer on a VM, or in a function; under Boxer it reaches Redis and PostgreSQL by their member names.
 *
 *   GET /read?k=N    item N: Redis GET item:N and PostgreSQL SELECT of row N,   200 with both values
 *                    at once (the cached copy and the stored one)
 *   GET /write?k=N   item N: PostgreSQL UPDATE of row N (who wrote it, a count), 200 "ok"
 *                    then Redis SET item:N (write-through)
 * Every answer carries `X-Served-By: NAME` ($BOXER_NAME, else the host name). Other paths: 404.
 *
 * Environment: PORT (default 8080), REDIS_URL (default redis://redis:6379), PG_URL (default
 * postgres://app@pg:5432/app, bench/apps/pg.sh), PG_POOL (default 8), SERVICE_MS (default 0): a fixed
 * work time per request, requests served one at a time, so an instance's capacity is 1000 / SERVICE_MS
 * requests per second (the burst experiment models a tier that saturates, without burning the shared CPU of
 * the lab); 0: no queue, each request goes straight to Redis. MAX_S (default 900) bounds its life. SIGTERM:
 * stops accepting, finishes the requests it has, exits 0. Prints "LOGIC_READY PORT start=A load=B connect=C" once
 * it serves: ms from the process's start to this file running (Node.js itself), to the client libraries
 * loaded, and the Redis and PostgreSQL connections.
 */
'use strict';
const T_START = Math.round(process.uptime() * 1000);
const T0 = Date.now();
const http = require('node:http');
const os = require('node:os');
const { createClient } = require('redis');
const { Pool } = require('pg');
const T_LOADED = Date.now();

const PORT = Number(process.env.PORT || 8080);
const REDIS_URL = process.env.REDIS_URL || 'redis://redis:6379';
const PG_URL = process.env.PG_URL || 'postgres://app@pg:5432/app';
const PG_POOL = Number(process.env.PG_POOL || 8);
const SERVICE_MS = Number(process.env.SERVICE_MS || 0);
const MAX_S = Number(process.env.MAX_S || 900);
const NAME = process.env.BOXER_NAME || os.hostname();

const redis = createClient({ url: REDIS_URL, socket: { connectTimeout: 10_000, reconnectStrategy: (n) => (n > 50 ? new Error('redis unreachable') : 200) } });
redis.on('error', (e) => process.stderr.write(`logic: redis: ${e.message}\n`));
const pg = new Pool({ connectionString: PG_URL, max: PG_POOL, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 0 });
pg.on('error', (e) => process.stderr.write(`logic: postgres: ${e.message}\n`));

/** One request at a time for SERVICE_MS each (see the top). */
let busyUntil = 0;
function work() {
  if (SERVICE_MS <= 0) return Promise.resolve();
  const now = Date.now();
  const start = Math.max(now, busyUntil);
  busyUntil = start + SERVICE_MS;
  return new Promise((r) => setTimeout(r, busyUntil - now));
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const k = Number(url.searchParams.get('k') || 0) % 100000;
  let body;
  if (url.pathname === '/read') {
    await work();
    const [cached, row] = await Promise.all([redis.get(`item:${k}`), pg.query('SELECT v, n FROM items WHERE k = $1', [k])]);
    const r = row.rows[0];
    body = `${cached ?? '-'} | ${r ? `${r.v} (${r.n})` : '-'}`;
  } else if (url.pathname === '/write') {
    await work();
    const v = `${NAME} ${Date.now()}`;
    await pg.query('INSERT INTO items (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = items.n + 1', [k, v]);
    await redis.set(`item:${k}`, v);
    body = 'ok';
  } else {
    res.writeHead(404, { 'X-Served-By': NAME }).end('not found\n');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Served-By': NAME }).end(`${body}\n`);
}

async function main() {
  // Redis and the pool's connections are opened at once, before the first request (a failure is reported
  // now, not per request).
  const [, held] = await Promise.all([redis.connect(), Promise.all(Array.from({ length: PG_POOL }, () => pg.connect()))]);
  for (const c of held) c.release();
  const tConnected = Date.now();
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      process.stderr.write(`logic: ${e.message}\n`);
      if (!res.headersSent) res.writeHead(500, { 'X-Served-By': NAME });
      res.end('error\n');
    });
  });
  server.keepAliveTimeout = 5_000;
  server.listen(PORT, () => process.stdout.write(`LOGIC_READY ${PORT} start=${T_START} load=${T_LOADED - T0} connect=${tConnected - T_LOADED}\n`));
  const stop = () => {
    server.close(() => Promise.allSettled([redis.quit(), pg.end()]).finally(() => process.exit(0)));
    server.closeIdleConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  setTimeout(stop, MAX_S * 1000).unref();
}

main().catch((e) => {
  process.stderr.write(`logic: ${e.message}\n`);
  process.exit(1);
});
