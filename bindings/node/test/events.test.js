'use strict';
// Events: renewed, lost, failed, deleted, ipChanged, serverRestarted, driven
// by the test server's faults, with bounded waits.
const test = require('node:test');
const assert = require('node:assert/strict');
const { setup, nextEvent } = require('./helpers');

test('renewed: the core renews before the lifetime runs out', async (t) => {
  const { server, client } = setup(t, { maxLifetime: 2 });
  const m = await client.map(8080);
  assert.equal(m.lifetime, 2);
  const [renewed] = await nextEvent(client, 'renewed');
  assert.equal(renewed, m, 'the event carries the same, updated Mapping object');
  assert.equal(renewed.externalPort, m.externalPort);
  assert.equal(server.mappingCount, 1);
});

test('serverRestarted and renewed: a rebooted server gets its mappings back', async (t) => {
  // Up for an hour, so the reboot's epoch 0 is unmistakably a restart.
  const { server, client } = setup(t, { initialEpoch: 3600 });
  const m = await client.map(8080, { externalPort: 43000 });
  await client.map(8081, { protocol: 'udp' });
  const restarted = nextEvent(client, 'serverRestarted');
  const renewals = new Promise((resolve) => {
    const seen = new Set();
    client.on('renewed', function onRenewed(r) {
      seen.add(r.internalPort);
      if (seen.size === 2) {
        client.off('renewed', onRenewed);
        resolve(seen);
      }
    });
  });
  server.reboot(); // epoch back to 0, state lost, unsolicited ANNOUNCE
  assert.equal(server.mappingCount, 0);
  const [epoch] = await restarted;
  assert.ok(epoch <= 1, `epoch after reboot: ${epoch}`);
  assert.deepEqual([...(await renewals)].sort(), [8080, 8081]);
  assert.equal(server.mappingCount, 2);
  const held = server.mappings().find((x) => x.internalPort === 8080);
  assert.equal(held.nonce, m.nonce, 'recreated with the same nonce');
  assert.equal(held.externalPort, 43000);
});

test('ipChanged: the external address changes (old, new)', async (t) => {
  const { server, client } = setup(t);
  const m = await client.map(8080);
  assert.equal(m.externalAddress, '203.0.113.7');
  const changed = nextEvent(client, 'ipChanged');
  const updated = nextEvent(client, 'updated');
  const renewed = nextEvent(client, 'renewed');
  server.setExternalAddress('203.0.113.99');
  // The server says so with an unsolicited MAP response (RFC 6887 14.2).
  const [u] = await updated;
  assert.equal(u.externalAddress, '203.0.113.99');
  const [oldAddress, newAddress] = await changed;
  assert.equal(oldAddress, '203.0.113.7');
  assert.equal(newAddress, '203.0.113.99');
  await renewed;
  assert.equal(m.externalAddress, '203.0.113.99');
});

test('lost: renewals keep failing until the mapping expires', async (t) => {
  const { server, client } = setup(t, { maxLifetime: 2 });
  const m = await client.map(8080);
  server.forceResult('NO_RESOURCES', 1);
  const [lost, err] = await nextEvent(client, 'lost');
  assert.equal(lost, m);
  assert.equal(err.code, 'NO_RESOURCES');
  assert.equal(m.active, false);
  assert.deepEqual(client.mappings(), []);
});

test('deleted: a delete finished', async (t) => {
  const { client } = setup(t);
  const m = await client.map(8080);
  const deleted = nextEvent(client, 'deleted');
  await m.delete();
  const [id] = await deleted;
  assert.equal(id, m.id);
});

test('the event handler is removed with the last listener, and added again', async (t) => {
  const { server, client } = setup(t);
  const onDeleted = () => {};
  client.on('deleted', onDeleted);
  assert.equal(client._listening, true);
  client.off('deleted', onDeleted);
  assert.equal(client._listening, false);
  // Lifetime 0: with one, the client rightly sends no new mapping request
  // for that long after NO_RESOURCES (RFC 6887 8.3), so no 'failed' event.
  server.forceResult('NO_RESOURCES', 0);
  await assert.rejects(client.map(8080), { code: 'NO_RESOURCES' });
  const failed = nextEvent(client, 'failed');
  assert.equal(client._listening, true);
  await assert.rejects(client.map(8081), { code: 'NO_RESOURCES' });
  const [, err] = await failed;
  assert.equal(err.code, 'NO_RESOURCES');
});

test('internalIpChanged: our own address changes and the mappings are made again from it (RFC 6887 11.5)', {
  // Only Linux lets a bound UDP socket be bound to another address: elsewhere the
  // core refuses the move with INVALID_ARGUMENT (and wine sends from 127.0.0.1 anyway).
  skip: process.platform !== 'linux' && 'a bound UDP socket cannot be moved to another address on this platform',
}, async (t) => {
  const { server, client } = setup(t);
  const m = await client.map(8086, { lifetime: 600 });
  assert.equal(m.internalAddress, '127.0.0.1');
  assert.equal(await client.setLocalAddress('127.0.0.1'), false);
  const changed = nextEvent(client, 'internalIpChanged');
  const renewed = nextEvent(client, 'renewed');
  assert.equal(await client.setLocalAddress('127.0.0.2'), true);
  assert.deepEqual(await changed, ['127.0.0.1', '127.0.0.2']);
  const [r] = await renewed;
  assert.equal(r, m);
  assert.equal(m.internalAddress, '127.0.0.2');
  assert.equal(await client.internalAddress(), '127.0.0.2');
  assert.equal(await client.refreshInternalAddress(), false, 'named explicitly: not checked');
  assert.ok(server.mappings().some((x) => x.internalPort === 8086 && x.internalAddress === '127.0.0.2'),
    JSON.stringify(server.mappings()));
  const back = nextEvent(client, 'internalIpChanged');
  assert.equal(await client.setLocalAddress(null), true);
  assert.deepEqual(await back, ['127.0.0.2', '127.0.0.1']);
  await assert.rejects(client.setLocalAddress('not an address'), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(client.setLocalAddress(42), TypeError);
});
