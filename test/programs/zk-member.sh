#!/bin/sh
# A member of a ZooKeeper ensemble (Debian's zookeeper, unmodified), configured from the Boxer member file:
# myid is the member id (BOXER_NODE_ID), and there is one `server.ID=NAME:2888:3888` line per member named in
# $ENSEMBLE (ids read from BOXER_NODES_FILE). Data and configuration live in $TMPDIR/zk-$BOXER_NAME, so a member
# restarted under its name (same id, same address) finds its data again. Runs ZooKeeper in the foreground,
# logging to stderr at $ZK_LOG_LEVEL (default warn).
set -eu
dir="$TMPDIR/zk-$BOXER_NAME"
mkdir -p "$dir/data"
echo "$BOXER_NODE_ID" > "$dir/data/myid"
cfg="$dir/zoo.cfg"
# initLimit (10 ticks of 1 s) bounds how long a peer that won a racing election waits for followers that chose
# another leader (seen when the old leader comes back during the election): ZooKeeper's own timer.
{
  echo "tickTime=1000"
  echo "initLimit=10"
  echo "syncLimit=5"
  echo "dataDir=$dir/data"
  echo "clientPort=2181"
  echo "admin.enableServer=false"
  echo "4lw.commands.whitelist=srvr,ruok,mntr"
  for n in $ENSEMBLE; do
    id=$(awk -v n="$n" '$3 == n { print $1 }' "$BOXER_NODES_FILE")
    [ -n "$id" ] || { echo "ZK_CONFIG_ERROR no member named $n in $BOXER_NODES_FILE"; exit 1; }
    echo "server.$id=$n:2888:3888"
  done
} > "$cfg"
echo "ZK_MEMBER $BOXER_NAME id=$BOXER_NODE_ID addr=$BOXER_ADDR pid=$$ $(grep -c '^server' "$cfg") servers"
# The JVM replaces this shell (same pid), with the flags that start it fastest on a small machine.
exec java -Xmx96m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
  -Dorg.slf4j.simpleLogger.defaultLogLevel="${ZK_LOG_LEVEL:-warn}" -Dorg.slf4j.simpleLogger.showDateTime=true \
  -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
