/**
 * Test support: checks an incoming request's AWS Signature Version 4 (the `Authorization` header the SDK
 * writes) against the test's own key, written independently of the SDK from AWS's published algorithm
 * (canonical request, string to sign, HMAC-SHA256 key derivation), so a request the SDK signed wrongly, or
 * not at all, is refused as AWS would refuse it.
 */
import crypto from 'node:crypto';

export interface SignedBy {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

export type SigCheck = { ok: true; by: SignedBy } | { ok: false; code: 'MissingAuthenticationToken' | 'IncompleteSignature' | 'UnrecognizedClient' | 'InvalidSignature'; message: string };

const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

const hmac = (key: Buffer | string, data: string): Buffer => crypto.createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer | string): string => crypto.createHash('sha256').update(data).digest('hex');

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept). */
function enc(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/**
 * Verifies `Authorization` for a request. `rawPath` is the path as sent (percent-encoded once); every service
 * but S3 signs each path segment encoded once more.
 */
export function verifySigV4(req: { method: string; rawPath: string; query: string; headers: Record<string, string | string[] | undefined>; body: Buffer }, keys: ReadonlyMap<string, string>): SigCheck {
  const auth = req.headers['authorization'];
  if (typeof auth !== 'string') return { ok: false, code: 'MissingAuthenticationToken', message: 'Missing Authentication Token' };
  const m = AUTH_RE.exec(auth);
  if (!m) return { ok: false, code: 'IncompleteSignature', message: `Authorization header is not a well-formed SigV4 header: ${auth.slice(0, 80)}` };
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m;
  const secret = keys.get(accessKeyId);
  if (!secret) return { ok: false, code: 'UnrecognizedClient', message: 'The security token included in the request is invalid.' };
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string' || !amzDate.startsWith(date)) return { ok: false, code: 'IncompleteSignature', message: 'X-Amz-Date is missing or does not match the credential scope' };
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return { ok: false, code: 'IncompleteSignature', message: 'host and x-amz-date must be signed' };
  const canonicalHeaders = names
    .map((n) => {
      const v = req.headers[n];
      const text = Array.isArray(v) ? v.join(',') : (v ?? '');
      return `${n}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const path = req.rawPath.split('/').map(enc).join('/');
  const query = req.query
    ? req.query
        .split('&')
        .filter(Boolean)
        .map((kv) => {
          const [k, v = ''] = kv.split('=');
          return [enc(decodeURIComponent(k)), enc(decodeURIComponent(v.replace(/\+/g, ' ')))];
        })
        .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join('&')
    : '';
  const payloadHash = typeof req.headers['x-amz-content-sha256'] === 'string' ? req.headers['x-amz-content-sha256'] : sha256(req.body);
  const canonical = [req.method, path || '/', query, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
  const expected = hmac(key, toSign).toString('hex');
  if (!crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
    return { ok: false, code: 'InvalidSignature', message: 'The request signature we calculated does not match the signature you provided.' };
  }
  return { ok: true, by: { accessKeyId, date, region, service } };
}
