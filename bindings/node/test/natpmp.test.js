'use strict';
// Against the test server as a NAT-PMP-only gateway: the classic and full
// APIs fall back to NAT-PMP (RFC 6887 section 9) by themselves.
const test = require('node:test');
const assert = require('node:assert/strict');
const { pcp, setup } = require('./helpers');

const { PCPClient, testing } = pcp;

test('the classic API works unchanged on a NAT-PMP-only gateway', async (t) => {
  const server = new testing.Server({ mode: 'natpmp', initialEpoch: 1000 });
  const client = new PCPClient(server.address, { listenAnnounce: false, announceDelayMax: 0 });
  t.after(async () => {
    await client.close();
    server.stop();
  });
  const r = await client.createMapping(8080, 8080, 6, 3600);
  assert.deepEqual(r, { externalIP: '203.0.113.7', externalPort: 8080, lifetime: 3600 });
  const u = await client.createMapping(9000, 0, 17, 600);
  assert.ok(u.externalPort > 0 && u.lifetime === 600);
  assert.equal(server.mappings().length, 2);
  await client.deleteMapping(8080);
  assert.equal(server.mappings().length, 1);
  await assert.rejects(client.createPeerMapping(7000, '198.51.100.1', 443), (e) => {
    assert.equal(e.code, 'UNSUPPORTED_BY_NATPMP');
    assert.match(e.message, /PEER/);
    return true;
  });
});

test('a mapping and its events say which protocol made it', async (t) => {
  const { client } = setup(t, { mode: 'natpmp' });
  const m = await client.map(4000);
  assert.equal(m.protocolVersion, 'natpmp');
  assert.equal(m.externalAddress, '203.0.113.7');
  assert.equal(await client.externalAddress(), '203.0.113.7');
  const found = client.findMapping(4000);
  assert.equal(found.protocolVersion, 'natpmp');
  await assert.rejects(client.map({ internalPort: 0, protocol: 0 }), { code: 'UNSUPPORTED_BY_NATPMP' });
  assert.ok(pcp.ERROR_CODES.includes('UNSUPPORTED_BY_NATPMP'));
});

test('the protocol option', async (t) => {
  const { client: pcpOnly } = setup(t, { mode: 'natpmp' }, { protocol: 'pcp' });
  await assert.rejects(pcpOnly.map(4001), { code: 'UNSUPP_VERSION' });
  const { client: natpmpOnly } = setup(t, {}, { protocol: 'natpmp' });
  assert.equal((await natpmpOnly.map(4002)).protocolVersion, 'natpmp');
  const { client: auto } = setup(t, {});
  assert.equal((await auto.map(4003)).protocolVersion, 'pcp');
  assert.throws(() => new pcp.Client('127.0.0.1:1', { protocol: 'upnp' }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => new testing.Server({ mode: 'upnp' }), { code: 'INVALID_ARGUMENT' });
});
