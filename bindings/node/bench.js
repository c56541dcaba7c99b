#!/usr/bin/env node
'use strict';
// Sequential createMapping round trips from Node to the core's test server on
// loopback, against the same loop in Rust (pcp-core's map_rate example), in
// the same run. Prints both rates and the ratio node/rust.
//
//   node bench.js [COUNT]        (default 2000; the addon must be built in release mode)
//
// Rust reference: `cargo run --release -p pcp-core --example map_rate -- COUNT`
// maps internal ports 10000+i on its own test server; this file runs the
// same loop through PCPClient: `await createMapping(10000 + i)`.

const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { PCPClient, testing } = require('./index.js');

const count = Number(process.argv[2] || 2000);
if (!Number.isInteger(count) || count < 1 || count > 55000) {
  console.error('usage: node bench.js [COUNT 1..55000]');
  process.exit(2);
}

// Builds map_rate once and returns the path of the executable.
function buildRust() {
  const out = execFileSync(
    'cargo',
    ['build', '--quiet', '--release', '-p', 'pcp-core', '--example', 'map_rate', '--message-format=json'],
    { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 },
  );
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line);
    if (msg.reason === 'compiler-artifact' && msg.target && msg.target.name === 'map_rate' && msg.executable) {
      return msg.executable;
    }
  }
  throw new Error('cargo did not report the map_rate executable');
}

function rustRate(exe) {
  const out = execFileSync(exe, [String(count)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const m = /map_rate\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`unexpected output from map_rate: ${out}`);
  return Number(m[1]);
}

async function nodeRate() {
  const server = new testing.Server();
  const client = new PCPClient(server.address, { listenAnnounce: false, deleteOnClose: false });
  // Warm up the path, as map_rate does.
  await client.createMapping(9999, 0, 17);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    await client.createMapping(10000 + i);
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await client.close();
  server.stop();
  return count / secs;
}

(async () => {
  // Build the Rust side first so compiling is not timed against anything.
  const exe = buildRust();
  // Interleave the runs so both see the same machine load; keep the best of each.
  let rust = 0;
  let node = 0;
  for (let round = 0; round < 3; round++) {
    rust = Math.max(rust, rustRate(exe));
    node = Math.max(node, await nodeRate());
  }
  console.log(`rust map_rate ${rust.toFixed(0)} round trips/s`);
  console.log(`node map_rate ${node.toFixed(0)} round trips/s`);
  console.log(`ratio node/rust ${(node / rust).toFixed(3)}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
