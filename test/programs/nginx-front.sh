#!/bin/sh
# nginx on a public VM in front of the members providing the service $SERVICE (resolved by name, DNS round
# robin, at configuration time), as the paper ran it. Runs unprivileged with everything under $TMPDIR.
set -u
cd "$TMPDIR"
mkdir -p nginx-tmp
cat > nginx.conf <<CONF
daemon off;
master_process on;
worker_processes 2;
error_log stderr warn;
pid $TMPDIR/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $TMPDIR/nginx-tmp/body;
  proxy_temp_path $TMPDIR/nginx-tmp/proxy;
  fastcgi_temp_path $TMPDIR/nginx-tmp/fastcgi;
  uwsgi_temp_path $TMPDIR/nginx-tmp/uwsgi;
  scgi_temp_path $TMPDIR/nginx-tmp/scgi;
  upstream backends { server $SERVICE:8080 max_fails=0; }
  server {
    listen 8000;
    location / { proxy_pass http://backends; proxy_next_upstream error timeout; }
  }
}
CONF
nginx -p "$TMPDIR" -c "$TMPDIR/nginx.conf" -e stderr &
PID=$!
echo NGINX_STARTED
while [ ! -e "$STOP" ]; do sleep 0.2; done
kill $PID
