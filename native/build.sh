#!/bin/sh
# Builds the native parts: the node-addon-api addon (node-gyp) and the LD_PRELOAD shim (make).
set -e
cd "$(dirname "$0")"
if [ -f binding.gyp ]; then node-gyp rebuild; fi
if [ -f Makefile ]; then make; fi
# The native parts for AWS Lambda (x86_64, and arm64 where the cross toolchain is installed): docs/lambda.md.
if [ -f Makefile ]; then make lambda; fi
# Compiled TypeScript in dist/src/<dir>/ reaches this directory as require('../../native') (the same
# relative path as from src/<dir>/, where the type checker finds index.d.ts): forward dist/native to here.
mkdir -p ../dist/native
printf "'use strict';\nmodule.exports = require('../../native');\n" > ../dist/native/index.js
