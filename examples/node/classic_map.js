#!/usr/bin/env node
'use strict';
// The classic API only, for the real-server interop suite:
//
//   node classic_map.js SERVER INTERNAL_PORT HOLD_SECONDS
//
// maps TCP INTERNAL_PORT, prints exactly one line
// `MAPPED <external_ip> <external_port> <lifetime>`, holds the mapping
// HOLD_SECONDS (renewed in the background), deletes it, prints `DELETED`,
// closes and exits 0. Errors go to stderr with a non-zero exit.
//
// It finds the package as `require('pcp-rs')`: run it with
// NODE_PATH=<dir containing pcp-rs> (for example the node_modules of a
// project that ran `npm install ./bindings/node`), or set PCP_RS_PATH to the
// package directory itself (e.g. PCP_RS_PATH=/path/to/bindings/node).
// Without either it falls back to ../../bindings/node of this checkout.

const path = require('node:path');

function loadPackage() {
  if (process.env.PCP_RS_PATH) return require(path.resolve(process.env.PCP_RS_PATH));
  try {
    return require('pcp-rs');
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes("'pcp-rs'")) throw e;
    return require(path.join(__dirname, '..', '..', 'bindings', 'node'));
  }
}

async function main() {
  const [server, portArg, holdArg] = process.argv.slice(2);
  const internalPort = Number(portArg);
  const hold = Number(holdArg);
  if (!server || !Number.isInteger(internalPort) || !(hold >= 0)) {
    console.error('usage: node classic_map.js SERVER INTERNAL_PORT HOLD_SECONDS');
    process.exit(2);
  }
  const { PCPClient } = loadPackage();
  const client = new PCPClient(server);
  try {
    const { externalIP, externalPort, lifetime } = await client.createMapping(internalPort);
    console.log(`MAPPED ${externalIP} ${externalPort} ${lifetime}`);
    await new Promise((resolve) => setTimeout(resolve, hold * 1000));
    await client.deleteMapping(internalPort);
    console.log('DELETED');
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`classic_map: ${e.code ? `${e.code}: ` : ''}${e.message}`);
    process.exit(1);
  },
);
