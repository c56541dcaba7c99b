'use strict';
// The classic API, called exactly as hand-rolled Node PCP clients are.
const test = require('node:test');
const assert = require('node:assert/strict');
const { pcp, bounded, nextEvent } = require('./helpers');

const { PCPClient, testing } = pcp;

function serverAndClient(t, serverOptions) {
  const server = new testing.Server(serverOptions);
  const client = new PCPClient(server.address, { listenAnnounce: false, announceDelayMax: 0 });
  t.after(async () => {
    await client.close();
    server.stop();
  });
  return { server, client };
}

test('createMapping with the defaults resolves { externalIP, externalPort, lifetime }', async (t) => {
  const { server, client } = serverAndClient(t);
  const r = await client.createMapping(8080);
  assert.deepEqual(Object.keys(r), ['externalIP', 'externalPort', 'lifetime']);
  assert.equal(r.externalIP, server.externalAddress);
  assert.ok(Number.isInteger(r.externalPort) && r.externalPort > 0);
  assert.equal(r.lifetime, 3600);
  const [m] = server.mappings();
  assert.equal(m.internalPort, 8080);
  assert.equal(m.protocol, 6);
  assert.equal(m.externalPort, r.externalPort);
});

test('createMapping(internalPort, externalPort, protocol, lifetime)', async (t) => {
  const { server, client } = serverAndClient(t);
  const r = await client.createMapping(5000, 45000, 17, 600);
  assert.deepEqual(r, { externalIP: '203.0.113.7', externalPort: 45000, lifetime: 600 });
  assert.equal(server.mappings()[0].protocol, 17);
});

test('deleteMapping removes the mapping from the server', async (t) => {
  const { server, client } = serverAndClient(t);
  await client.createMapping(8080);
  await client.createMapping(8080, 0, 17);
  assert.equal(server.mappingCount, 2);
  assert.equal(await client.deleteMapping(8080), undefined);
  assert.equal(server.mappingCount, 1);
  assert.equal(server.mappings()[0].protocol, 17);
  await client.deleteMapping(8080, 17);
  assert.equal(server.mappingCount, 0);
});

test('deleteMapping of a port this client did not map rejects with INVALID_ARGUMENT', async (t) => {
  const { client } = serverAndClient(t);
  await assert.rejects(client.deleteMapping(1234), { code: 'INVALID_ARGUMENT', message: /no mapping for TCP port 1234/ });
});

test('createPeerMapping resolves the external address and the peer', async (t) => {
  const { server, client } = serverAndClient(t);
  const r = await client.createPeerMapping(6000, '198.51.100.20', 443);
  assert.equal(r.externalIP, '203.0.113.7');
  assert.equal(r.lifetime, 3600);
  assert.equal(r.peerIP, '198.51.100.20');
  assert.equal(r.peerPort, 443);
  assert.equal(r.protocol, 6);
  const [m] = server.mappings();
  assert.equal(m.opcode, 'PEER');
  assert.equal(m.remoteAddress, '198.51.100.20');
  assert.equal(m.externalPort, r.externalPort);
});

test('close() deletes what the client mapped, and later calls reject with CLOSED', async (t) => {
  const server = new testing.Server();
  t.after(() => server.stop());
  const client = new PCPClient(server.address, { listenAnnounce: false });
  await client.createMapping(8080);
  await client.createPeerMapping(8081, '198.51.100.1', 80, 17, 60);
  assert.equal(server.mappingCount, 2);
  await client.close();
  assert.equal(server.mappingCount, 0);
  await assert.rejects(client.createMapping(8082), { code: 'CLOSED' });
  await client.close(); // idempotent
});

test('"host:port", a bare IPv4 address with the default port, and IPv6', async (t) => {
  // "host:port" is the form every other test uses; here the other forms.
  const v6 = new testing.Server({ listen: '[::1]:0' });
  t.after(() => v6.stop());
  assert.match(v6.address, /^\[::1\]:\d+$/);
  const c6 = new PCPClient(v6.address, { listenAnnounce: false });
  t.after(() => c6.close());
  const r = await c6.createMapping(8080);
  // An IPv6 "firewall" mapping: the external address is our own.
  assert.equal(r.externalIP, '::1');
  assert.equal(r.externalPort, 8080);

  const bare = new PCPClient('127.0.0.1', { listenAnnounce: false });
  const c = await bare.client();
  assert.equal(c.server, '127.0.0.1:5351');
  await bare.close();
});

test('no server argument discovers (with injected loopback candidates)', async (t) => {
  const server = new testing.Server();
  t.after(() => server.stop());
  const client = new PCPClient(undefined, { candidates: [server.address], listenAnnounce: false });
  t.after(() => client.close());
  const r = await client.createMapping(8080);
  assert.equal(r.externalIP, server.externalAddress);
  assert.equal(server.mappingCount, 1);
});

test('a failed discovery rejects the calls with NO_GATEWAY', async (t) => {
  const dead = new testing.Server();
  const addr = dead.address;
  dead.stop(); // nothing answers there: ICMP port unreachable
  const client = new PCPClient(null, { candidates: [addr], discoveryDeadline: 2000 });
  await assert.rejects(client.createMapping(8080), { code: 'NO_GATEWAY' });
  await client.close();
});

test('mappings made through PCPClient are renewed until deleted', async (t) => {
  const { server, client } = serverAndClient(t, { maxLifetime: 2 });
  const r = await client.createMapping(8080);
  assert.equal(r.lifetime, 2);
  const full = await client.client();
  const [renewed] = await nextEvent(full, 'renewed');
  assert.equal(renewed.internalPort, 8080);
  assert.equal(renewed.externalPort, r.externalPort);
  await nextEvent(full, 'renewed');
  assert.equal(server.mappingCount, 1);
  await client.deleteMapping(8080);
  assert.equal(server.mappingCount, 0);
});

test('bad arguments reject with a clear message', async (t) => {
  const { client } = serverAndClient(t);
  await assert.rejects(client.createMapping(70000), { code: 'INVALID_ARGUMENT', message: /internalPort must be an integer 0\.\.65535, got 70000/ });
  await assert.rejects(client.createMapping('http'), { code: 'INVALID_ARGUMENT', message: /internalPort/ });
  await assert.rejects(client.createMapping(8080, -1), { code: 'INVALID_ARGUMENT', message: /externalPort/ });
  await assert.rejects(client.createMapping(8080, 0, 300), { code: 'INVALID_ARGUMENT', message: /protocol/ });
  await assert.rejects(client.createMapping(8080, 0, 6, 1.5), { code: 'INVALID_ARGUMENT', message: /lifetime/ });
  await assert.rejects(client.createPeerMapping(8080, 'not-an-ip', 80), { code: 'INVALID_ARGUMENT', message: /remoteAddress is not an IP address/ });
  await assert.rejects(client.createPeerMapping(8080, '198.51.100.1', 99999), { code: 'INVALID_ARGUMENT', message: /remotePort/ });
  assert.throws(() => new PCPClient('999.1.1.1:x'), { code: 'INVALID_ARGUMENT' });
  // A rejected call does not break the client.
  const r = await bounded(client.createMapping('8080'), 'createMapping');
  assert.equal(r.lifetime, 3600);
});

test('examples/node/classic_map.js keeps its contract against the test server', async (t) => {
  const { execFile } = require('node:child_process');
  const path = require('node:path');
  const server = new testing.Server();
  t.after(() => server.stop());
  const script = path.join(__dirname, '..', '..', '..', 'examples', 'node', 'classic_map.js');
  const run = (args) =>
    new Promise((resolve) => {
      execFile(process.execPath, [script, ...args], { timeout: 20000, env: { ...process.env, PCP_RS_PATH: path.join(__dirname, '..') } }, (err, stdout, stderr) =>
        resolve({ code: err ? err.code : 0, stdout, stderr }),
      );
    });
  const ok = await run([server.address, '8080', '0']);
  assert.equal(ok.code, 0, ok.stderr);
  const lines = ok.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^MAPPED 203\.0\.113\.7 \d+ 3600$/);
  assert.equal(lines[1], 'DELETED');
  assert.equal(server.mappingCount, 0);
  server.forceResult('NOT_AUTHORIZED');
  const bad = await run([server.address, '8080', '0']);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /NOT_AUTHORIZED/);
});
