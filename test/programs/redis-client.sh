#!/bin/sh
# Writes keys through one master and reads them back through another, following cluster redirections (-c).
set -u
# Wait until every master sees the whole cluster (gossip converges within a few seconds).
ready() { for h in $MASTERS; do
  redis-cli -h "$h" cluster info 2>/dev/null | tr -d '\r' | grep -q '^cluster_state:ok$' || return 1
  [ "$(redis-cli -h "$h" cluster nodes 2>/dev/null | grep -c master)" = 3 ] || return 1
done; }
i=0; until ready || [ $i -ge 120 ]; do i=$((i+1)); sleep 0.5; done
redis-cli -h "$FIRST" cluster info | tr -d '\r' | grep -E 'cluster_state|cluster_known_nodes'
ok=0
for k in 1 2 3 4 5 6 7 8 9 10; do
  s=$(redis-cli -c -h "$FIRST" set "$BOXER_NAME-key$k" "value$k-$BOXER_NAME" 2>&1 | tr -d '\r')
  v=$(redis-cli -c -h "$SECOND" get "$BOXER_NAME-key$k" 2>&1 | tr -d '\r')
  if [ "$v" = "value$k-$BOXER_NAME" ]; then ok=$((ok+1)); else echo "MISS key$k set=[$s] get=[$v]"; fi
done
echo "REDIS_OK $ok/10"
redis-cli -h "$FIRST" cluster nodes | awk '{print "NODE", $2}'
while [ ! -e "$STOP" ]; do sleep 0.2; done
