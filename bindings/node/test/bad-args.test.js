'use strict';
// Bad arguments: wrong types, out-of-range values, use after close, close
// twice. Asserts error codes (err.code), never message texts.
const { test } = require('node:test');
const assert = require('node:assert');
const { pcp } = require('./helpers');

const isCode = (code) => (e) => {
  assert.strictEqual(e.code, code, `want ${code}, got ${e.code}: ${e.message}`);
  return true;
};

test('map, peer and the client refuse bad arguments with INVALID_ARGUMENT', async () => {
  const server = new pcp.testing.Server();
  const client = new pcp.Client(server.address, { listenAnnounce: false, deadline: 2000 });
  try {
    const badMaps = [
      [-1], [65536], [2 ** 70], [80, { protocol: 0 }] /* port 0 with TCP is all ports, RFC 6887 11.1 */, [80.5], [null], [undefined], [{}],
      [80, { protocol: 'icmpx' }], [80, { protocol: 256 }], [80, { protocol: -1 }],
      [80, { externalPort: -1 }], [80, { externalPort: 65536 }], [80, { lifetime: 0 }], [80, { lifetime: -5 }],
      [80, { lifetime: 2 ** 32 }], [80, { externalAddress: 'nope' }], [80, { thirdParty: 'nope' }],
      [80, { nonce: 'short' }], [80, { preferFailure: true }], [80, { deadline: 0 }], [80, { deadline: -1 }],
      [80, { filters: [{ remoteAddress: '198.51.100.0', prefixLength: 33 }] }],
    ];
    for (const args of badMaps) {
      await assert.rejects(() => client.map(...args), isCode('INVALID_ARGUMENT'), JSON.stringify(args));
    }
    const badPeers = [
      { internalPort: 80, remoteAddress: 'not an ip', remotePort: 443 },
      { internalPort: 80, remoteAddress: '0.0.0.0', remotePort: 443 },
      { internalPort: 80, remoteAddress: '198.51.100.1', remotePort: 0 },
      { internalPort: 80, remoteAddress: '198.51.100.1', remotePort: 70000 },
      { internalPort: 80, remoteAddress: 12345, remotePort: 443 },
      { internalPort: 0, remoteAddress: '198.51.100.1', remotePort: 443 },
    ];
    for (const spec of badPeers) {
      await assert.rejects(() => client.peer(spec), isCode('INVALID_ARGUMENT'), JSON.stringify(spec));
    }
    await assert.rejects(() => client.peer(null), isCode('INVALID_ARGUMENT'));
    await assert.rejects(() => client.delete('x'), isCode('INVALID_ARGUMENT'));
    assert.strictEqual(server.mappingCount, 0, 'a refused call sent nothing');
  } finally {
    await client.close();
    server.stop();
  }
  for (const bad of ['', 'not a host name!', '127.0.0.1:0', '127.0.0.1:70000', 5, {}]) {
    assert.throws(() => new pcp.Client(bad, { listenAnnounce: false }), isCode('INVALID_ARGUMENT'), String(bad));
  }
  for (const deadline of [0, -1, NaN, '5']) {
    assert.throws(() => new pcp.Client('127.0.0.1', { listenAnnounce: false, deadline }), isCode('INVALID_ARGUMENT'));
  }
});

test("a value of the wrong type, such as the port '80', is a TypeError with code INVALID_ARGUMENT (as Python's TypeError)", async () => {
  const server = new pcp.testing.Server();
  const classic = new pcp.PCPClient(server.address, { listenAnnounce: false, deadline: 2000 });
  const client = await classic.client();
  const typeError = (e) => e instanceof TypeError && isCode('INVALID_ARGUMENT')(e);
  try {
    for (const args of [['80'], [80, '0'], [80, 0, 6, '3600'], [80, 0, {}]]) {
      await assert.rejects(() => classic.createMapping(...args), typeError, JSON.stringify(args));
    }
    await assert.rejects(() => classic.deleteMapping('80'), typeError);
    await assert.rejects(() => classic.createPeerMapping('80', '198.51.100.1', 443), typeError);
    await assert.rejects(() => client.map('80'), typeError);
    await assert.rejects(() => client.map(80, { externalPort: '81' }), typeError);
    assert.throws(() => client.findMapping('80'), typeError);
    // Options napi-rs converts: its type errors are TypeErrors too, naming the field.
    await assert.rejects(() => client.peer({ internalPort: 80, remoteAddress: '198.51.100.1', remotePort: 443, lifetime: '300' }), typeError);
    await assert.rejects(() => client.map(80, { nonce: 12 }), typeError);
    assert.throws(() => new pcp.Client(server.address, { listenAnnounce: 'no' }), (e) => typeError(e) && e.message === 'listenAnnounce must be a boolean');
    await assert.rejects(() => pcp.discover({ candidates: '127.0.0.1' }), typeError);
    // In JavaScript's words (napi-rs names the Rust type): the test server's
    // arguments, list items and filter fields.
    const says = (re) => (e) => typeError(e) && re.test(e.message) && !/rust/i.test(e.message);
    assert.throws(() => server.dropNext('3'), says(/^an argument of dropNext\(\) must be a number, got a string$/));
    assert.throws(() => server.setHostile({}), says(/must be a string, got an object$/));
    assert.throws(() => server.forceResult(true), says(/^an argument of forceResult\(\) must be a string or a number$/));
    assert.throws(() => new pcp.testing.Server({ minLifetime: '1' }), says(/^minLifetime must be a number, got a string$/));
    await assert.rejects(() => client.map(80, { filters: [{ remoteAddress: 5 }] }), says(/^filter remoteAddress must be a string, got a number$/));
    await assert.rejects(() => pcp.discover({ candidates: [5] }), says(/^each of candidates must be a string, got a number$/));
    // A number out of range stays a PCPError (Python: ValueError).
    await assert.rejects(() => classic.createMapping(70000), (e) => e instanceof pcp.PCPError && isCode('INVALID_ARGUMENT')(e));
    assert.strictEqual(server.mappingCount, 0, 'a refused call sent nothing');
  } finally {
    await classic.close();
    server.stop();
  }
});

test('a result code by number, and maxRetransmissions, as in Python and C', async () => {
  const server = new pcp.testing.Server();
  const client = new pcp.Client(server.address, { listenAnnounce: false, maxRetransmissions: 2 });
  server.forceResult(2, 0);
  await assert.rejects(client.map(8080), isCode('NOT_AUTHORIZED'));
  server.forceResult(null);
  assert.throws(() => server.forceResult(99), isCode('INVALID_ARGUMENT'));
  for (const n of [-1, 1.5, 2 ** 32]) {
    assert.throws(() => new pcp.Client(server.address, { maxRetransmissions: n }), isCode('INVALID_ARGUMENT'), String(n));
  }
  await client.close();
  server.stop();
});

test('after close every call is CLOSED, and close twice is fine', async () => {
  const server = new pcp.testing.Server({ initialEpoch: 5000 });
  const client = new pcp.Client(server.address, { listenAnnounce: false, deadline: 2000 });
  const m = await client.map(8080);
  const [epoch, internal] = [client.serverEpoch, await client.internalAddress()];
  await client.close();
  await client.close();
  assert.strictEqual(client.closed, true);
  await assert.rejects(() => client.map(8081), isCode('CLOSED'));
  await assert.rejects(() => client.peer({ internalPort: 8081, remoteAddress: '198.51.100.1', remotePort: 443 }), isCode('CLOSED'));
  await assert.rejects(() => client.announce(), isCode('CLOSED'));
  await assert.rejects(() => client.externalAddress(), isCode('CLOSED'));
  await assert.rejects(() => client.delete(m), isCode('CLOSED'));
  await assert.rejects(() => m.delete(), isCode('CLOSED'));
  assert.strictEqual(m.internalPort, 8080, "the mapping's fields stay readable");
  // What the client knew stays readable (as in Python); it holds no mapping.
  assert.ok(epoch >= 5000 && client.serverEpoch === epoch, `epoch ${epoch}, after close ${client.serverEpoch}`);
  assert.strictEqual(await client.internalAddress(), internal);
  assert.deepStrictEqual(client.mappings(), []);
  assert.strictEqual(client.findMapping(8080), null);
  assert.strictEqual(m.active, false);
  await assert.rejects(() => client.setLocalAddress(null), isCode('CLOSED'));
  await assert.rejects(() => client.refreshInternalAddress(), isCode('CLOSED'));
  // A close whose deletes go unanswered lets go of the mapping all the same.
  const silent = new pcp.Client(server.address, { listenAnnounce: false, closeTimeout: 300 });
  const held = await silent.map(8090);
  server.dropNext(100);
  await silent.close();
  assert.strictEqual(held.active, false);
  assert.strictEqual(held.refresh(), false);
  server.dropNext(0);

  const classic = new pcp.PCPClient(server.address);
  await assert.rejects(() => classic.createMapping(2 ** 70), isCode('INVALID_ARGUMENT'));
  await assert.rejects(() => classic.createMapping(80, 0, 6, -1), isCode('INVALID_ARGUMENT'));
  await classic.close();
  await classic.close();
  await assert.rejects(() => classic.createMapping(80), isCode('CLOSED'));
  await assert.rejects(() => classic.deleteMapping(80), isCode('CLOSED'));
  server.stop();
});

test("after close the epoch is the last one seen, the deletes' answers included (as in the core)", async () => {
  const server = new pcp.testing.Server({ initialEpoch: 5000 });
  const client = new pcp.Client(server.address, { listenAnnounce: false, deadline: 2000 });
  await client.map(8080);
  assert.ok(client.serverEpoch >= 5000);
  // The server forgets everything and counts from 0: the delete's answer says so.
  server.reboot();
  await client.close();
  assert.ok(client.serverEpoch < 5000, `epoch after close ${client.serverEpoch}`);
  server.stop();
});
