#!/bin/sh
# Writes keys through one master and reads them back through another, following cluster redirections (-c).
set -u
i=0; until [ "$(redis-cli -c -h "$FIRST" cluster info 2>/dev/null | tr -d '\r' | grep cluster_state)" = "cluster_state:ok" ] || [ $i -ge 120 ]; do i=$((i+1)); sleep 0.5; done
redis-cli -h "$FIRST" cluster info | tr -d '\r' | grep -E 'cluster_state|cluster_known_nodes'
ok=0
for k in 1 2 3 4 5 6 7 8 9 10; do
  redis-cli -c -h "$FIRST" set "key$k" "value$k-$BOXER_NAME" >/dev/null
  v=$(redis-cli -c -h "$SECOND" get "key$k" | tr -d '\r')
  [ "$v" = "value$k-$BOXER_NAME" ] && ok=$((ok+1))
done
echo "REDIS_OK $ok/10"
redis-cli -h "$FIRST" cluster nodes | awk '{print "NODE", $2}'
while [ ! -e "$STOP" ]; do sleep 0.2; done
