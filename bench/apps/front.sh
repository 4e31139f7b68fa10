#!/bin/sh
# The front end of the application experiments: nginx (Debian's, unmodified, unprivileged, everything under
# $TMPDIR) on port $LISTEN, proxying to $UPSTREAM (HOST:PORT: the logic tier's service name under Boxer, its
# address natively), resolved once when nginx starts, as nginx does. A new upstream connection per request
# (nginx's default), so that each request can go to another member of the service; with $KEEPALIVE (N > 0),
# nginx keeps up to N idle upstream connections per worker and reuses them (`keepalive`, HTTP/1.1 to the
# upstream: the usual production setting; new members then get only the connections nginx opens anew).
# $ACCESS_LOG (optional):
# one line per request, "epoch_msec status upstream_addr served_by" (X-Served-By: the member that answered).
# Runs until $STOP exists (or SIGTERM); prints FRONT_READY once nginx listens.
set -u
cd "$TMPDIR"
mkdir -p nginx-tmp
LOG="access_log off;"
[ -n "${ACCESS_LOG:-}" ] && LOG="log_format tl '\$msec \$status \$upstream_addr \$upstream_http_x_served_by'; access_log $ACCESS_LOG tl buffer=64k flush=200ms;"
UPKEEP=""
LOCKEEP=""
# keepalive_timeout under the logic tier's own idle timeout (5 s), so that nginx closes an idle connection first.
if [ "${KEEPALIVE:-0}" -gt 0 ]; then
  UPKEEP="keepalive $KEEPALIVE; keepalive_timeout 4s;"
  LOCKEEP="proxy_http_version 1.1; proxy_set_header Connection \"\";"
fi
cat > front.conf <<CONF
daemon off;
master_process on;
worker_processes 2;
error_log stderr error;
pid $TMPDIR/front.pid;
events { worker_connections 1024; }
http {
  $LOG
  client_body_temp_path $TMPDIR/nginx-tmp/body;
  proxy_temp_path $TMPDIR/nginx-tmp/proxy;
  fastcgi_temp_path $TMPDIR/nginx-tmp/fastcgi;
  uwsgi_temp_path $TMPDIR/nginx-tmp/uwsgi;
  scgi_temp_path $TMPDIR/nginx-tmp/scgi;
  upstream logic { server $UPSTREAM max_fails=0; $UPKEEP }
  server {
    listen $LISTEN backlog=1024;
    location / { proxy_pass http://logic; $LOCKEEP }
  }
}
CONF
nginx -p "$TMPDIR" -c "$TMPDIR/front.conf" -e stderr &
PID=$!
trap 'kill $PID 2>/dev/null; exit 0' TERM INT
i=0
while [ $i -lt 100 ] && [ -z "$(ss -ltnH "sport = :$LISTEN" 2>/dev/null)" ]; do sleep 0.1; i=$((i+1)); done
echo FRONT_READY
while [ ! -e "${STOP:-/nonexistent}" ] && kill -0 $PID 2>/dev/null; do sleep 0.2; done
kill $PID 2>/dev/null
