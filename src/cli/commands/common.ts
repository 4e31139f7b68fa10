/** Helpers shared by the commands: parsing HOST:PORT, loading the keys. */
import { BoxerError } from '../../util/errors';
import { sodiumReady, sodium } from '../../crypto/sodium';
import { deriveNetworkKey, generateKeyPair, type KeyPair } from '../../crypto/keys';

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? ' without a scheme such as http://' : '';
    throw new BoxerError('USAGE', `${what} ${JSON.stringify(text)}: expected HOST:PORT${scheme}, e.g. seed.example.com:7070 (HOST a DNS name or an IP address)`);
  }
  return { host: m[1] ?? m[2], port };
}

export async function networkKeys(secret: string): Promise<{ psk: Uint8Array; keys: KeyPair; networkId: string }> {
  await sodiumReady();
  const psk = deriveNetworkKey(secret);
  const networkId = Buffer.from(sodium().crypto_generichash(8, psk)).toString('hex');
  return { psk, keys: generateKeyPair(), networkId };
}
