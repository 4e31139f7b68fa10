/**
 * The one place that loads libsodium (WebAssembly, so nothing native to build). Call `await sodiumReady()`
 * once before any other function of src/crypto; afterwards `sodium()` returns the loaded module.
 */
import _sodium from 'libsodium-wrappers';

let loaded: typeof _sodium | undefined;

export async function sodiumReady(): Promise<typeof _sodium> {
  if (!loaded) {
    await _sodium.ready;
    loaded = _sodium;
  }
  return loaded;
}

export function sodium(): typeof _sodium {
  if (!loaded) throw new Error('libsodium used before sodiumReady() resolved (a bug: await sodiumReady() at start)');
  return loaded;
}
