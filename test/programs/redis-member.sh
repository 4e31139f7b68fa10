#!/bin/sh
# A Redis Cluster member: redis-server in cluster mode on port 6379 (bus 16379); the member named by $CREATOR
# creates the cluster from every member's virtual address (from the member file) once all answer.
set -u
cd "$TMPDIR"
redis-server --port 6379 --cluster-enabled yes --cluster-config-file nodes-$BOXER_NAME.conf --cluster-node-timeout 5000 \
  --appendonly no --save '' --protected-mode no --dir "$TMPDIR" --logfile "$TMPDIR/redis-$BOXER_NAME.log" &
PID=$!
if [ "$BOXER_NAME" = "$CREATOR" ]; then
  ADDRS=$(awk -v want="$MASTERS" 'BEGIN{n=split(want,w," "); for(i=1;i<=n;i++) ok[w[i]]=1} ok[$3]{printf "%s:6379 ", $2}' "$BOXER_NODES_FILE")
  for a in $ADDRS; do
    i=0; until redis-cli -h "${a%:*}" -p 6379 ping >/dev/null 2>&1 || [ $i -ge 60 ]; do i=$((i+1)); sleep 0.5; done
  done
  redis-cli --cluster create $ADDRS --cluster-yes >"$TMPDIR/create.log" 2>&1 && echo CREATED || { echo CREATE_FAILED; cat "$TMPDIR/create.log"; }
fi
while [ ! -e "$STOP" ]; do sleep 0.2; done
kill $PID
