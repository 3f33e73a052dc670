#!/usr/bin/env node
// Refreshes a TUF repository with tuf-js's Updater (an independent client) and downloads targets:
//   node tufjs_update.js --root ROOT_JSON --metadata-url URL --target-url URL --metadata-dir MD
//                        --target-dir TD [--target NAME ...]
// MD is created and seeded with ROOT_JSON when it holds no root.json yet (later runs keep what tuf-js
// trusted, so a client that trusted an old root must walk the rotation). Each target is written to
// TD/<NAME>; its `custom` object (if any) is printed on stdout as one JSON line: {"name":..,"custom":..}.
// Exit 0 on success, 1 on any failure (with tuf-js's error on stderr).
// Needs INTEROP_NODE_DIR (the directory holding node_modules from `npm ci`).
'use strict';
const fs = require('fs');
const path = require('path');
const nodeRequire = require('module').createRequire(
  path.join(process.env.INTEROP_NODE_DIR || __dirname, 'package.json'));
const { Updater } = nodeRequire('tuf-js');

function parseArgs(argv) {
  const opts = { targets: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--root': opts.root = value; break;
      case '--metadata-url': opts.metadataUrl = value; break;
      case '--target-url': opts.targetUrl = value; break;
      case '--metadata-dir': opts.metadataDir = value; break;
      case '--target-dir': opts.targetDir = value; break;
      case '--target': opts.targets.push(value); break;
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  for (const k of ['root', 'metadataUrl', 'targetUrl', 'metadataDir', 'targetDir']) {
    if (!opts[k]) throw new Error(`missing --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  fs.mkdirSync(opts.metadataDir, { recursive: true });
  fs.mkdirSync(opts.targetDir, { recursive: true });
  const trusted = path.join(opts.metadataDir, 'root.json');
  if (!fs.existsSync(trusted)) fs.copyFileSync(opts.root, trusted);
  const updater = new Updater({
    metadataDir: opts.metadataDir,
    metadataBaseUrl: opts.metadataUrl,
    targetDir: opts.targetDir,
    targetBaseUrl: opts.targetUrl,
    config: { fetchRetries: 0, fetchTimeout: 10000 },
  });
  await updater.refresh();
  for (const name of opts.targets) {
    const info = await updater.getTargetInfo(name);
    if (!info) throw new Error(`target ${name} not found`);
    const out = path.join(opts.targetDir, name);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    await updater.downloadTarget(info, out);
    process.stdout.write(JSON.stringify({ name, custom: info.custom }) + '\n');
  }
}

main().catch((err) => {
  process.stderr.write(`tuf-js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
