#!/usr/bin/env node
// Builds a static TUF repository with an independent implementation (@tufjs/models, signing with node's
// crypto), for airlock-agent to consume:
//   node make_repo.js OUT
// writes OUT/repo/metadata/ and OUT/repo/targets/ (consistent snapshots) and OUT/expected/<target name>
// (the bytes each target must download as).
//
// What it exercises:
//   - ed25519 keys (keyval.public = hex) and ECDSA P-256 keys (keyval.public = SPKI PEM, DER signatures);
//   - a root threshold of 2 and a root rotation: 1.root.json (root keys A ed25519 + B ecdsa) is followed by
//     2.root.json (keys A + C ecdsa, and a new timestamp key), signed by both thresholds;
//   - a target with sha256 and sha512 hashes (stored under both hash-prefixed names);
//   - a delegated role "releases" (ecdsa key, paths releases/*, terminating) holding a target in a
//     subdirectory; snapshot meta with and without length/hashes;
//   - metadata files pretty-printed (not canonical), so a client must canonicalize `signed` itself.
// Needs INTEROP_NODE_DIR (the directory holding node_modules from `npm ci`).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const nodeRequire = require('module').createRequire(
  path.join(process.env.INTEROP_NODE_DIR || __dirname, 'package.json'));
const { Metadata, Root, Targets, Snapshot, Timestamp, Key, Signature, MetaFile, TargetFile } =
  nodeRequire('@tufjs/models');
const { Delegations } = nodeRequire('@tufjs/models/dist/delegations');
const { DelegatedRole } = nodeRequire('@tufjs/models/dist/role');
const { canonicalize } = nodeRequire('@tufjs/canonical-json');

const SPEC_VERSION = '1.0.31';

function expiresIn(days) {
  const d = new Date(Date.now() + days * 86400 * 1000);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// A signing key: its TUF Key object and a signer for Metadata.sign().
function makeKey(kind) {
  let keyType, scheme, pub, privateKey;
  if (kind === 'ed25519') {
    const pair = crypto.generateKeyPairSync('ed25519');
    privateKey = pair.privateKey;
    const der = pair.publicKey.export({ format: 'der', type: 'spki' });
    keyType = 'ed25519';
    scheme = 'ed25519';
    pub = der.subarray(der.length - 32).toString('hex');
  } else if (kind === 'ecdsa') {
    const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    privateKey = pair.privateKey;
    keyType = 'ecdsa';
    scheme = 'ecdsa-sha2-nistp256';
    pub = pair.publicKey.export({ format: 'pem', type: 'spki' });
  } else {
    throw new Error(`unknown key kind ${kind}`);
  }
  const keyval = { public: pub };
  const keyID = crypto.createHash('sha256')
    .update(canonicalize({ keytype: keyType, scheme, keyval })).digest('hex');
  const key = new Key({ keyID, keyType, scheme, keyVal: keyval });
  const signer = (data) => new Signature({
    keyID,
    sig: crypto.sign(kind === 'ed25519' ? null : 'sha256', data, privateKey).toString('hex'),
  });
  return { key, signer, keyID };
}

function sha(alg, data) {
  return crypto.createHash(alg).update(data).digest('hex');
}

function writeJson(file, md) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const text = JSON.stringify(md.toJSON(), null, 2) + '\n';
  fs.writeFileSync(file, text);
  return Buffer.from(text);
}

function main() {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: make_repo.js OUT\n');
    process.exit(2);
  }
  const metaDir = path.join(out, 'repo', 'metadata');
  const targetsDir = path.join(out, 'repo', 'targets');
  const expectedDir = path.join(out, 'expected');
  fs.mkdirSync(metaDir, { recursive: true });
  fs.mkdirSync(targetsDir, { recursive: true });

  const rootA = makeKey('ed25519');
  const rootB = makeKey('ecdsa');
  const rootC = makeKey('ecdsa');
  const targetsKey = makeKey('ed25519');
  const snapshotKey = makeKey('ecdsa');
  const timestampOld = makeKey('ecdsa');
  const timestampNew = makeKey('ed25519');
  const releasesKey = makeKey('ecdsa');

  // Targets and their bytes.
  const files = {
    'hello.txt': Buffer.from('hello from @tufjs/models\n'),
    'releases/app-1.0.bin': crypto.randomBytes(4096),
  };
  const storeTarget = (name, data, algs) => {
    const hashes = {};
    for (const alg of algs) hashes[alg] = sha(alg, data);
    const dir = path.join(targetsDir, path.dirname(name));
    fs.mkdirSync(dir, { recursive: true });
    for (const alg of algs) fs.writeFileSync(path.join(dir, `${hashes[alg]}.${path.basename(name)}`), data);
    const expected = path.join(expectedDir, name);
    fs.mkdirSync(path.dirname(expected), { recursive: true });
    fs.writeFileSync(expected, data);
    return new TargetFile({ path: name, length: data.length, hashes });
  };
  const hello = storeTarget('hello.txt', files['hello.txt'], ['sha256', 'sha512']);
  const app = storeTarget('releases/app-1.0.bin', files['releases/app-1.0.bin'], ['sha256']);

  // Root v1 and v2.
  const makeRoot = (version, rootKeys, timestampKey) => {
    const root = new Root({ version, specVersion: SPEC_VERSION, expires: expiresIn(365),
                            consistentSnapshot: true });
    for (const k of rootKeys) root.addKey(k.key, 'root');
    root.roles.root.threshold = 2;
    root.addKey(targetsKey.key, 'targets');
    root.addKey(snapshotKey.key, 'snapshot');
    root.addKey(timestampKey.key, 'timestamp');
    return new Metadata(root);
  };
  const root1 = makeRoot(1, [rootA, rootB], timestampOld);
  root1.sign(rootA.signer);
  root1.sign(rootB.signer);
  writeJson(path.join(metaDir, '1.root.json'), root1);
  const root2 = makeRoot(2, [rootA, rootC], timestampNew);
  for (const k of [rootA, rootB, rootC]) root2.sign(k.signer);  // old {A,B} and new {A,C} thresholds
  writeJson(path.join(metaDir, '2.root.json'), root2);
  writeJson(path.join(metaDir, 'root.json'), root2);

  // Delegated role "releases".
  const releases = new Metadata(new Targets({ version: 1, specVersion: SPEC_VERSION,
                                              expires: expiresIn(90) }));
  releases.signed.addTarget(app);
  releases.sign(releasesKey.signer);
  const releasesBytes = writeJson(path.join(metaDir, '1.releases.json'), releases);

  // Top-level targets with the delegation.
  const delegations = new Delegations({
    keys: { [releasesKey.keyID]: releasesKey.key },
    roles: {
      releases: new DelegatedRole({ name: 'releases', keyIDs: [releasesKey.keyID], threshold: 1,
                                    terminating: true, paths: ['releases/*'] }),
    },
  });
  const targets = new Metadata(new Targets({ version: 1, specVersion: SPEC_VERSION,
                                             expires: expiresIn(90), delegations }));
  targets.signed.addTarget(hello);
  targets.sign(targetsKey.signer);
  writeJson(path.join(metaDir, '1.targets.json'), targets);

  const snapshot = new Metadata(new Snapshot({
    version: 1, specVersion: SPEC_VERSION, expires: expiresIn(7),
    meta: {
      'targets.json': new MetaFile({ version: 1 }),
      'releases.json': new MetaFile({ version: 1, length: releasesBytes.length,
                                      hashes: { sha256: sha('sha256', releasesBytes) } }),
    },
  }));
  snapshot.sign(snapshotKey.signer);
  const snapshotBytes = writeJson(path.join(metaDir, '1.snapshot.json'), snapshot);

  const timestamp = new Metadata(new Timestamp({
    version: 1, specVersion: SPEC_VERSION, expires: expiresIn(1),
    snapshotMeta: new MetaFile({ version: 1, length: snapshotBytes.length,
                                 hashes: { sha256: sha('sha256', snapshotBytes) } }),
  }));
  timestamp.sign(timestampNew.signer);
  writeJson(path.join(metaDir, 'timestamp.json'), timestamp);

  // Self-check with the same library: every role verifies under its delegator.
  root1.verifyDelegate('root', root2);
  root2.verifyDelegate('root', root2);
  for (const [name, md] of [['timestamp', timestamp], ['snapshot', snapshot], ['targets', targets]]) {
    root2.verifyDelegate(name, md);
  }
  targets.verifyDelegate('releases', releases);
  process.stdout.write(`wrote ${out}/repo (root v2, targets: ${Object.keys(files).join(', ')})\n`);
}

main();
