'use strict';
// The full API: Client, Mapping, options, discovery.
const test = require('node:test');
const assert = require('node:assert/strict');
const { pcp, setup } = require('./helpers');

test('map() resolves a Mapping that the client holds and renews', async (t) => {
  const { server, client } = setup(t);
  const m = await client.map(8080);
  assert.ok(m instanceof pcp.Mapping);
  assert.equal(m.opcode, 'MAP');
  assert.equal(m.protocol, pcp.Protocol.TCP);
  assert.equal(m.internalPort, 8080);
  assert.equal(m.internalAddress, '127.0.0.1');
  assert.equal(m.externalAddress, '203.0.113.7');
  assert.equal(m.lifetime, 3600);
  assert.match(m.nonce, /^[0-9a-f]{24}$/);
  assert.equal(m.remoteAddress, null);
  assert.ok(m.active);
  assert.ok(m.expiresAt > new Date());
  assert.equal(server.mappings()[0].nonce, m.nonce);
  assert.deepEqual(client.mappings().map((x) => x.id), [m.id]);
  assert.equal(client.findMapping(8080), m);
  assert.equal(client.findMapping(8080, 'udp'), null);
  assert.ok(m.refresh());
  await m.delete();
  assert.equal(m.active, false);
  assert.equal(m.refresh(), false);
  assert.equal(server.mappingCount, 0);
  // Gone already: deleting it again succeeds and sends nothing (as in Python and C).
  const received = server.requestsReceived;
  await m.delete();
  assert.equal(server.requestsReceived, received);
});

test('map() options: protocol, externalPort, lifetime, spec object', async (t) => {
  const { server, client } = setup(t);
  const a = await client.map(5000, { protocol: 'udp', externalPort: 41000, lifetime: 120 });
  assert.equal(a.protocol, 17);
  assert.equal(a.externalPort, 41000);
  assert.equal(a.lifetime, 120);
  const b = await client.map({ internalPort: 5001, protocol: pcp.Protocol.TCP });
  assert.equal(b.protocol, 6);
  assert.equal(server.mappingCount, 2);
  await client.delete(a.id);
  await client.delete(b);
  assert.equal(server.mappingCount, 0);
});

test('PREFER_FAILURE: a taken external port fails instead of being replaced', async (t) => {
  const { client } = setup(t);
  const first = await client.map(7000, { externalPort: 42000 });
  assert.equal(first.externalPort, 42000);
  // Without the option the server picks another port...
  const other = await client.map(7001, { externalPort: 42000 });
  assert.notEqual(other.externalPort, 42000);
  // ...with it, it refuses.
  await assert.rejects(client.map(7002, { externalPort: 42000, preferFailure: true }), { code: 'CANNOT_PROVIDE_EXTERNAL' });
  assert.equal(pcp.Option.PREFER_FAILURE, 2);
});

test('THIRD_PARTY: a mapping for another host', async (t) => {
  const { server, client } = setup(t);
  const m = await client.map(8080, { thirdParty: '127.0.0.9' });
  assert.equal(m.internalAddress, '127.0.0.9');
  assert.equal(server.mappings()[0].internalAddress, '127.0.0.9');
  await m.delete();
  assert.equal(server.mappingCount, 0);
  assert.equal(pcp.Option.THIRD_PARTY, 1);
});

test('deleteByNonce: a mapping another client made, a THIRD_PARTY one included', async (t) => {
  const { server, client } = setup(t);
  const maker = new pcp.Client(server.address, { listenAnnounce: false });
  const plain = await maker.map(8080);
  const third = await maker.map(8081, { thirdParty: '127.0.0.9' });
  const [plainNonce, thirdNonce] = [plain.nonce, third.nonce];
  await maker.close({ keepMappings: true });
  assert.equal(server.mappingCount, 2);
  // Without its THIRD_PARTY address the delete names a mapping of ours,
  // which does not exist: the third party's stays.
  await client.deleteByNonce({ internalPort: 8081, nonce: thirdNonce });
  assert.equal(server.mappingCount, 2);
  await client.deleteByNonce({ internalPort: 8081, nonce: thirdNonce, thirdParty: '127.0.0.9' });
  assert.deepEqual(server.mappings().map((m) => m.internalPort), [8080]);
  await client.deleteByNonce({ protocol: 'tcp', internalPort: 8080, nonce: plainNonce });
  assert.equal(server.mappingCount, 0);
  await assert.rejects(client.deleteByNonce({ internalPort: 8080, nonce: 'xyz' }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(client.deleteByNonce({ internalPort: 8080, nonce: plainNonce, thirdParty: 'nope' }),
    { code: 'INVALID_ARGUMENT', message: 'invalid argument: thirdParty: "nope" is not an IPv4 or IPv6 address' });
  await assert.rejects(client.deleteByNonce(null), { code: 'INVALID_ARGUMENT' });
});

test('FILTER: remote peers the mapping admits', async (t) => {
  const { server, client } = setup(t);
  await client.map(8080, {
    filters: [
      { remoteAddress: '198.51.100.0', prefixLength: 24, remotePort: 443 },
      { remoteAddress: '192.0.2.7' },
    ],
  });
  assert.equal(server.mappings()[0].filters, 2);
  await assert.rejects(client.map(8081, { filters: [{ remoteAddress: '192.0.2.7', prefixLength: 33 }] }), {
    code: 'INVALID_ARGUMENT',
    message: /FILTER prefix \/33 is too long for 192\.0\.2\.7/,
  });
  assert.equal(pcp.Option.FILTER, 3);
});

test('peer() makes a PEER mapping', async (t) => {
  const { server, client } = setup(t);
  const m = await client.peer({ internalPort: 6000, remoteAddress: '198.51.100.20', remotePort: 443, protocol: 'tcp', lifetime: 300 });
  assert.equal(m.opcode, 'PEER');
  assert.equal(m.remoteAddress, '198.51.100.20');
  assert.equal(m.remotePort, 443);
  assert.equal(m.lifetime, 300);
  assert.equal(server.mappings()[0].opcode, 'PEER');
  await client.delete(m);
  assert.equal(server.mappingCount, 0);
});

test('announce, externalAddress, gatewayAddress, internalAddress', async (t) => {
  const { server, client } = setup(t);
  const epoch = await client.announce();
  assert.ok(Number.isInteger(epoch) && epoch >= 0);
  assert.equal(client.serverEpoch, epoch);
  assert.equal(await client.externalAddress(), '203.0.113.7');
  server.setExternalAddress('203.0.113.99');
  assert.equal(await client.externalAddress(), '203.0.113.99');
  assert.equal(await client.gatewayAddress(), '127.0.0.1');
  assert.equal(await client.internalAddress(), '127.0.0.1');
  assert.equal(client.server, server.address);
  assert.equal(client.listensForAnnounce, false);
});

test('discover() with injected loopback candidates', async (t) => {
  const server = new pcp.testing.Server();
  t.after(() => server.stop());
  const found = await pcp.discover({ candidates: [server.address] });
  assert.equal(found.server, server.address);
  assert.equal(found.internalAddress, '127.0.0.1');
  assert.ok(Number.isInteger(found.epoch));
  const client = await pcp.Client.discover({ candidates: [server.address], listenAnnounce: false });
  t.after(() => client.close());
  assert.equal(client.server, server.address);
  await client.map(8080);
  assert.equal(server.mappingCount, 1);
});

test('several requests in flight at once share the client', async (t) => {
  const { server, client } = setup(t);
  const ports = Array.from({ length: 50 }, (_, i) => 20000 + i);
  const maps = await Promise.all(ports.map((p) => client.map(p)));
  assert.deepEqual(maps.map((m) => m.internalPort), ports);
  assert.equal(new Set(maps.map((m) => m.externalPort)).size, 50);
  assert.equal(server.mappingCount, 50);
  await Promise.all(maps.map((m) => m.delete()));
  assert.equal(server.mappingCount, 0);
});

test('close({ keepMappings: true }) leaves the mappings on the server', async (t) => {
  const server = new pcp.testing.Server();
  t.after(() => server.stop());
  const client = new pcp.Client(server.address, { listenAnnounce: false });
  await client.map(8080);
  let closed = false;
  client.on('close', () => (closed = true));
  await client.close({ keepMappings: true });
  assert.ok(closed);
  assert.ok(client.closed);
  assert.equal(server.mappingCount, 1);
  assert.deepEqual(client.mappings(), []);
});

test('the test server: fault injection and bookkeeping', async (t) => {
  const { server, client } = setup(t);
  assert.match(server.address, /^127\.0\.0\.1:\d+$/);
  assert.equal(server.host, '127.0.0.1');
  assert.ok(server.port > 0);
  const before = server.requestsReceived;
  await client.announce();
  assert.equal(server.requestsReceived, before + 1);
  assert.throws(() => server.forceResult('NOT_A_CODE'),
    { code: 'INVALID_ARGUMENT', message: 'invalid argument: code: "NOT_A_CODE" is not the name of a PCP error result code' });
  assert.throws(() => server.forceResult('SUCCESS'), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => server.setDelay(-1), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => new pcp.testing.Server({ listen: 'nowhere' }), { code: 'INVALID_ARGUMENT' });
  server.stop();
  server.stop();
  assert.throws(() => server.mappingCount, { code: 'INVALID_ARGUMENT', message: /the test server is stopped/ });
});

test('answers are read on the JavaScript thread; many sequential requests all resolve', async (t) => {
  const { server, client } = setup(t);
  // Internal: libuv watches the client's socket (see src/reader.rs).
  assert.equal(client._native.readsOnMainThread(), true);
  for (let i = 0; i < 300; i++) {
    const m = await client.map(20000 + i, { protocol: i % 2 ? 'udp' : 'tcp' });
    assert.equal(m.internalPort, 20000 + i);
  }
  assert.equal(server.mappingCount, 300);
  // Timer-driven results (the driver thread) still arrive.
  server.dropNext(1000);
  await assert.rejects(client.map(8080, { deadline: 300 }), { code: 'TIMEOUT' });
  server.dropNext(0);
  assert.equal((await client.map(8081)).internalPort, 8081);
  await client.close();
  assert.equal(client._native.readsOnMainThread(), false);
});
