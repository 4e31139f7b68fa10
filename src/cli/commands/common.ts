/** Helpers shared by the commands: parsing HOST:PORT, loading the keys. */
import { BoxerError } from '../../util/errors';
import { sodiumReady, sodium } from '../../crypto/sodium';
import { deriveNetworkKey, generateKeyPair, type KeyPair } from '../../crypto/keys';

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !(port > 0 && port < 65536)) {
    throw new BoxerError('USAGE', `${what} ${JSON.stringify(text)}: expected HOST:PORT, e.g. seed.example.com:7070`);
  }
  return { host: m[1], port };
}

export async function networkKeys(secret: string): Promise<{ psk: Uint8Array; keys: KeyPair; networkId: string }> {
  await sodiumReady();
  const psk = deriveNetworkKey(secret);
  const networkId = Buffer.from(sodium().crypto_generichash(8, psk)).toString('hex');
  return { psk, keys: generateKeyPair(), networkId };
}
