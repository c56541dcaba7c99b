#!/usr/bin/env node
'use strict';
// Sequential createMapping round trips from Node to the core's test server on
// loopback, against the same loop in Rust (pcp-core's map_rate example), in
// the same run. Prints both rates and the ratio node/rust.
//
//   node bench.js [COUNT] [--warmup N] [--rounds R]
//
// Defaults: COUNT 10000 timed round trips after N = 5000 untimed ones, R = 3
// rounds. The addon must be built in release mode (`npm run build`).
//
// Each side runs in a fresh process with its own in-process test server:
// Rust `map_rate COUNT --warmup N` maps TCP 10000+i after warming up on UDP
// 10000+i; the Node child does exactly that with `await createMapping(...)`.
// Both warm up alike because V8 needs a few thousand calls to compile the
// path; timing a cold start would measure the JIT, not the binding.
//
// Where the threads run decides these numbers more than anything else: on
// loopback a round trip is two thread wake-ups, and waking a thread on the
// other CPU costs more than all the work. So every round runs twice, with
// the scheduler left alone and with both processes pinned to one CPU
// (`taskset -c 0`, when there is more than one CPU and taskset exists).
// Each line gives the median of the rounds.
//
// A third loop shows what Node itself costs: the same round trips with
// node:dgram and one Promise each, hand-built requests and no checks at all
// (the `dgram` lines). pcp-rs cannot be much faster than that from Node.

const { execFileSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');

function usage() {
  console.error('usage: node bench.js [COUNT 1..55535] [--warmup N] [--rounds R]');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { count: 10000, warmup: 5000, rounds: 3, child: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--child') o.child = argv[++i];
    else o.count = Number(a);
  }
  const ok = (n, min, max) => Number.isInteger(n) && n >= min && n <= max;
  if (!ok(o.count, 1, 55535) || !ok(o.warmup, 0, 55535) || !ok(o.rounds, 1, 100)) usage();
  return o;
}

// ---------------------------------------------------------------- children

// The Node loop, as the Rust one: warm up on UDP, time TCP 10000+i.
async function nodeLoop(count, warmup) {
  const { PCPClient, testing } = require('./index.js');
  const server = new testing.Server();
  const client = new PCPClient(server.address, { listenAnnounce: false, deleteOnClose: false });
  for (let i = 0; i < warmup; i++) await client.createMapping(10000 + i, 0, 17);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await client.createMapping(10000 + i);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await client.close();
  server.stop();
  return count / secs;
}

// Node's own floor: node:dgram, one Promise per round trip, the request
// built by hand (RFC 6887 MAP, IPv4-mapped 127.0.0.1), only the result
// code looked at.
async function dgramLoop(count, warmup) {
  const dgram = require('node:dgram');
  const crypto = require('node:crypto');
  const { testing } = require('./index.js');
  const server = new testing.Server();
  const sock = dgram.createSocket('udp4');
  let waiting = null;
  sock.on('message', (m) => {
    const w = waiting;
    waiting = null;
    if (w) w(m);
  });
  await new Promise((resolve) => sock.connect(server.port, server.host, resolve));
  const request = (internalPort, protocol) => {
    const b = Buffer.alloc(60);
    b[0] = 2; // version
    b[1] = 1; // MAP
    b.writeUInt32BE(3600, 4);
    b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], 8);
    crypto.randomFillSync(b, 24, 12); // nonce
    b[36] = protocol;
    b.writeUInt16BE(internalPort, 40);
    return b;
  };
  const roundTrip = (port, protocol) =>
    new Promise((resolve) => {
      waiting = resolve;
      sock.send(request(port, protocol));
    });
  for (let i = 0; i < warmup; i++) await roundTrip(10000 + i, 17);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const answer = await roundTrip(10000 + i, 6);
    if (answer[3] !== 0) throw new Error(`the server answered result code ${answer[3]}`);
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  sock.close();
  server.stop();
  return count / secs;
}

// ---------------------------------------------------------------- parent

// Builds map_rate once and returns the path of the executable.
function buildRust() {
  const out = execFileSync(
    'cargo',
    ['build', '--quiet', '--release', '-p', 'pcp-core', '--example', 'map_rate', '--message-format=json'],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 },
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

function hasTaskset() {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Runs `argv` (under `pin`, a command prefix) and reads "<label> <rate>".
function rate(pin, argv, label) {
  const cmd = [...pin, ...argv];
  const out = execFileSync(cmd[0], cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const m = new RegExp(`${label}\\s+([\\d.]+)`).exec(out);
  if (!m) throw new Error(`unexpected output from ${cmd.join(' ')}: ${out}`);
  return Number(m[1]);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function main(o) {
  // Built first, so compiling is not timed against anything.
  const exe = buildRust();
  const placements = [{ name: 'unpinned', pin: [] }];
  if (os.availableParallelism() > 1 && hasTaskset()) placements.push({ name: 'one CPU', pin: ['taskset', '-c', '0'] });
  const n = [String(o.count), '--warmup', String(o.warmup)];
  const self = [process.execPath, __filename];
  console.log(`${o.count} round trips after ${o.warmup} warm-up ones, median of ${o.rounds} rounds`);
  for (const { name, pin } of placements) {
    const runs = { rust: [], node: [], dgram: [] };
    // Interleaved, so that all three see the same machine load.
    for (let r = 0; r < o.rounds; r++) {
      runs.rust.push(rate(pin, [exe, ...n], 'map_rate'));
      runs.node.push(rate(pin, [...self, '--child', 'node', ...n], 'map_rate'));
      runs.dgram.push(rate(pin, [...self, '--child', 'dgram', ...n], 'map_rate'));
    }
    const [rust, node, dgram] = [median(runs.rust), median(runs.node), median(runs.dgram)];
    const list = (xs) => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(`${name}:`);
    console.log(`  rust  map_rate ${rust.toFixed(0)} round trips/s (${list(runs.rust)})`);
    console.log(`  node  map_rate ${node.toFixed(0)} round trips/s (${list(runs.node)})`);
    console.log(`  dgram map_rate ${dgram.toFixed(0)} round trips/s (${list(runs.dgram)})`);
    console.log(`  ratio node/rust ${(node / rust).toFixed(3)}   (node:dgram/rust ${(dgram / rust).toFixed(3)})`);
  }
}

const opts = parseArgs(process.argv.slice(2));
if (opts.child) {
  const loop = { node: nodeLoop, dgram: dgramLoop }[opts.child];
  if (!loop) usage();
  loop(opts.count, opts.warmup).then(
    (r) => console.log(`map_rate ${r.toFixed(0)}`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  try {
    main(opts);
  } catch (e) {
    console.error(e.message || e);
    process.exit(1);
  }
}
