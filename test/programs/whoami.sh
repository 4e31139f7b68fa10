#!/bin/sh
# Who am I, as unmodified programs ask it: one "TOOL value" line per answer (hostname, hostname -I, uname -n,
# python's gethostname/getfqdn/gethostbyname(gethostname()), and Java's view when a JDK can run WhoAmI.java and
# NOJAVA is unset).
dir=$(dirname "$0")
echo "HOSTNAME $(hostname)"
echo "HOSTNAME_I $(hostname -I)"
echo "UNAME_N $(uname -n)"
python3 -c 'import socket; n = socket.gethostname(); print("PY", n, socket.getfqdn(), socket.gethostbyname(n))'
if [ -n "${NOJAVA:-}" ]; then
  echo "JAVA_NONE not asked (NOJAVA)"
elif command -v javac >/dev/null 2>&1; then
  java -Xshare:auto "$dir/WhoAmI.java" 2>&1 | sed 's/^/JAVA_/'
else
  echo "JAVA_NONE no JDK (javac) here"
fi
echo WHOAMI_DONE
