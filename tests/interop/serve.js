#!/usr/bin/env node
// A tiny static HTTP server for the interop tests: serves one directory on 127.0.0.1, on a port the kernel
// picks. Prints the port (and only the port) on the first line of stdout, then serves until killed.
//   node serve.js DIR [--log FILE]
// GET/HEAD only; 404 for anything missing, for any path component starting with '.' (so a repository's
// private .airlock/ state is never served) and for paths that would leave DIR. --log appends one line per
// request ("STATUS PATH") so tests can check what a client asked for.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const args = process.argv.slice(2);
if (args.length < 1) {
  process.stderr.write('usage: serve.js DIR [--log FILE]\n');
  process.exit(2);
}
const root = fs.realpathSync(args[0]);
const logIndex = args.indexOf('--log');
const logFile = logIndex >= 0 ? args[logIndex + 1] : null;

function log(status, urlPath) {
  if (logFile) fs.appendFileSync(logFile, `${status} ${urlPath}\n`);
}

const server = http.createServer((req, res) => {
  const urlPath = (req.url || '/').split('?')[0];
  const finish = (status, body, headers = {}) => {
    log(status, urlPath);
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return finish(405, 'method not allowed\n');
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch (e) {
    return finish(400, 'bad request\n');
  }
  const parts = decoded.split('/').filter((p) => p !== '');
  if (parts.some((p) => p.startsWith('.') || p.includes('\0') || p.includes('\\'))) {
    return finish(404, 'not found\n');
  }
  const file = path.join(root, ...parts);
  if (file !== root && !file.startsWith(root + path.sep)) return finish(404, 'not found\n');
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) return finish(404, 'not found\n');
    fs.readFile(file, (readErr, data) => {
      if (readErr) return finish(404, 'not found\n');
      finish(200, data, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': data.length,
      });
    });
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
