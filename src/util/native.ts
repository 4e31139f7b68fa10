/**
 * The native addon (native/index.js; its API and types: native/index.d.ts), loaded in this one place, once,
 * on first use. Loading throws with code ENOADDON when the addon is not built (`npm run build:native`).
 */
import path from 'node:path';

export type NativeApi = typeof import('../../native/index');

let api: NativeApi | null = null;

export function native(): NativeApi {
  // The repository's native/ (this file runs from dist/src/util).
  if (!api) api = require(path.resolve(__dirname, '../../../native')) as NativeApi;
  return api;
}
