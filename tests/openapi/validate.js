// Validates docs/api/openapi.yaml against the OpenAPI 3.1 specification (@readme/openapi-parser, pinned
// in package-lock.json) and checks that every endpoint the Markdown contracts name - a method and a
// path in backticks, e.g. `POST /api/v1/apps` - is described there with that method, so the two cannot
// drift apart. Exits non-zero on any error.
//   node validate.js NODE_DIR OPENAPI_YAML CONTRACT_MD...
'use strict';
const fs = require('fs');
const path = require('path');

const [nodeDir, specPath, ...contracts] = process.argv.slice(2);
if (!nodeDir || !specPath || contracts.length === 0) {
  console.error('usage: node validate.js NODE_DIR OPENAPI_YAML CONTRACT_MD...');
  process.exit(2);
}
const parser = require(path.resolve(nodeDir, 'node_modules', '@readme', 'openapi-parser'));

const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE'];
// `METHOD /path` anywhere in a line; the query string is not part of the path.
const ENDPOINT = new RegExp('`(' + METHODS.join('|') + ') (/[^`\\s?]*)(\\?[^`\\s]*)?`', 'g');

async function main() {
  let failures = 0;
  const fail = (msg) => {
    failures++;
    console.error('FAIL: ' + msg);
  };

  const result = await parser.validate(specPath);
  if (!result.valid) {
    fail(specPath + ' is not a valid OpenAPI document:\n' + parser.compileErrors(result));
  }
  for (const w of result.warnings || []) console.warn('warning: ' + JSON.stringify(w));

  const spec = await parser.parse(specPath);
  if (!/^3\.1\./.test(String(spec.openapi))) fail('openapi is ' + spec.openapi + ', not 3.1.x');
  const paths = spec.paths || {};
  if (!spec.components || !spec.components.securitySchemes || !spec.components.securitySchemes.bearer) {
    fail('no bearer security scheme');
  }

  let checked = 0;
  for (const md of contracts) {
    const lines = fs.readFileSync(md, 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const m of line.matchAll(ENDPOINT)) {
        const method = m[1].toLowerCase();
        const p = m[2];
        checked++;
        if (!(p in paths)) {
          fail(`${md}:${i + 1}: ${m[1]} ${p} is not a path in ${specPath}`);
        } else if (!paths[p][method]) {
          fail(`${md}:${i + 1}: ${p} in ${specPath} has no ${m[1]} operation`);
        } else if (p.startsWith('/api/v1/')) {
          const op = paths[p][method];
          const security = op.security || spec.security || [];
          if (!security.some((s) => 'bearer' in s)) fail(`${m[1]} ${p} does not require the bearer token`);
        }
      }
    });
  }
  if (checked === 0) fail('no `METHOD /path` endpoints found in ' + contracts.join(', '));
  console.log(`${specPath}: ${Object.keys(paths).length} paths; ${checked} endpoints from the contract checked`);
  if (failures > 0) {
    console.error(`${failures} failure(s)`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error('FAIL: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
