// A Node.js HTTP server (listening on ::, as Node does by default) that answers with the peer it sees, and a
// client mode: `node node-http.js get URL` prints the body it gets. Unmodified Node under the shim.
'use strict';
const http = require('http');
if (process.argv[2] === 'get') {
  const url = process.argv[3];
  let tries = 0;
  const attempt = () => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          console.log(`BODY ${body}`);
          process.exit(0);
        });
      })
      .on('error', (e) => {
        if (++tries < 20) setTimeout(attempt, 500);
        else {
          console.log(`ERROR ${e.code || e.message}`);
          process.exit(1);
        }
      });
  };
  attempt();
} else {
  const port = Number(process.argv[2] || 8081);
  http
    .createServer((req, res) => res.end(`${req.socket.remoteAddress} ${req.socket.remotePort} ${req.socket.localAddress}`))
    .listen(port, () => console.log(`LISTENING ${port}`));
  const stop = process.env.STOP;
  setInterval(() => {
    if (stop && require('fs').existsSync(stop)) process.exit(0);
  }, 200);
}
