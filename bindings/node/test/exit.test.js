'use strict';
// The process ends by itself: after close(), for an idle client, and with
// unref() while only background renewals remain. Each case runs in a child
// process; the bound only stops a hung child, nothing asserts on time.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const PKG = path.join(__dirname, '..');

function run(body) {
  const script = `
    const pcp = require(${JSON.stringify(PKG)});
    const server = new pcp.testing.Server();
    (async () => { ${body} })().catch((e) => { console.error(e); process.exit(3); });
  `;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

test('the process exits after close(), without awaiting it', async () => {
  const r = await run(`
    const client = new pcp.PCPClient(server.address, { listenAnnounce: false });
    const m = await client.createMapping(8080);
    console.log('MAPPED', m.externalPort);
    client.close();
    process.on('exit', () => console.log('LEFT', server.mappingCount));
  `);
  assert.equal(r.signal, null, `killed: ${r.err}`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /MAPPED \d+/);
  assert.match(r.out, /LEFT 0/, 'close() deleted the mapping before the process ended');
});

test('an idle client does not keep the process alive', async () => {
  const r = await run(`
    const client = new pcp.Client(server.address, { listenAnnounce: false });
    console.log('EPOCH', await client.announce());
    console.log('ADDR', await client.externalAddress());
  `);
  assert.equal(r.signal, null, `killed: ${r.err}`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /ADDR 203\.0\.113\.7/);
});

test('unref(): background renewals alone do not keep the process alive', async () => {
  const r = await run(`
    const client = new pcp.Client(server.address, { listenAnnounce: false }).unref();
    client.on('renewed', () => {});
    await client.map(8080);
    console.log('HELD', client.mappings().length);
  `);
  assert.equal(r.signal, null, `killed: ${r.err}`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /HELD 1/);
});

test('a client holding mappings keeps the process alive until close()', async () => {
  // The mapping is renewed (lifetime 2 s) while the process waits; close()
  // from the renewed handler then lets it end.
  const r = await run(`
    const s2 = new pcp.testing.Server({ maxLifetime: 2 });
    const client = new pcp.Client(s2.address, { listenAnnounce: false });
    client.once('renewed', (m) => { console.log('RENEWED', m.internalPort); client.close(); });
    await client.map(8080);
  `);
  assert.equal(r.signal, null, `killed: ${r.err}`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /RENEWED 8080/);
});

test('a listening client lets the process exit once its results and their events are in', async () => {
  const r = await run(`
    const client = new pcp.Client(server.address, { listenAnnounce: false });
    client.on('failed', (id, e) => console.log('FAILED', e.code));
    client.on('deleted', () => console.log('DELETED'));
    // Lifetime 0: with one, NO_RESOURCES rightly holds back the next new
    // mapping request for that long (RFC 6887 8.3).
    server.forceResult('NO_RESOURCES', 0);
    await client.map(8080).catch((e) => console.log('REJECTED', e.code));
    server.forceResult(null);
    const m = await client.map(8081);
    await m.delete();
  `);
  assert.equal(r.signal, null, `killed: ${r.err}`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /REJECTED NO_RESOURCES/);
  assert.match(r.out, /FAILED NO_RESOURCES/, 'the event after the rejection still arrived');
  assert.match(r.out, /DELETED/);
});
