'use strict';
// Loader of Boxer's native addon (native/build/Release/boxer_native.node, built by `npm run build:native`).
// The API is documented in index.d.ts. Resolved relative to this file, so any `require()` of this
// directory works, wherever the caller lives.
const path = require('path');

const ADDON = path.join(__dirname, 'build', 'Release', 'boxer_native.node');
/** Path of the LD_PRELOAD shim built by native/Makefile. */
const SHIM_PATH = path.join(__dirname, 'out', 'libboxer-shim.so');
/** Path of the seccomp supervisor built by native/Makefile (programs that do not load the shim). */
const SECCOMP_PATH = path.join(__dirname, 'out', 'boxer-seccomp');

let addon;
try {
  addon = require(ADDON);
} catch (e) {
  const err = new Error(
    `boxer native addon not loadable from ${ADDON} (${e && e.message}); build it with \`npm run build:native\``,
  );
  err.code = 'ENOADDON';
  err.cause = e;
  throw err;
}

module.exports = {
  tcpSocket: addon.tcpSocket,
  bind: addon.bind,
  localAddress: addon.localAddress,
  connectStart: addon.connectStart,
  connectWait: addon.connectWait,
  setLinger0: addon.setLinger0,
  tcpLiveness: addon.tcpLiveness,
  close: addon.close,
  sendFd: addon.sendFd,
  recvFd: addon.recvFd,
  peerCred: addon.peerCred,
  hideProcess: addon.hideProcess,
  scrubEnv: addon.scrubEnv,
  socketPair: addon.socketPair,
  splice: addon.splice,
  spliceAbortAll: addon.spliceAbortAll,
  spliceActive: addon.spliceActive,
  SHIM_PATH,
  SECCOMP_PATH,
  ADDON_PATH: ADDON,
};
