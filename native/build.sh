#!/bin/sh
# Builds the native parts: the node-addon-api addon (node-gyp) and the LD_PRELOAD shim (make).
set -e
cd "$(dirname "$0")"
if [ -f binding.gyp ]; then node-gyp rebuild; fi
if [ -f Makefile ]; then make; fi
