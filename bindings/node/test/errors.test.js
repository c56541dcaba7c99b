'use strict';
// Every error code, each from a real exchange with the test server.
const test = require('node:test');
const assert = require('node:assert/strict');
const { pcp, setup } = require('./helpers');

const SERVER_CODES = [
  'UNSUPP_VERSION',
  'NOT_AUTHORIZED',
  'MALFORMED_REQUEST',
  'UNSUPP_OPCODE',
  'UNSUPP_OPTION',
  'MALFORMED_OPTION',
  'NETWORK_FAILURE',
  'NO_RESOURCES',
  'UNSUPP_PROTOCOL',
  'USER_EX_QUOTA',
  'CANNOT_PROVIDE_EXTERNAL',
  'ADDRESS_MISMATCH',
  'EXCESSIVE_REMOTE_PEERS',
];

test('ERROR_CODES lists every code', () => {
  assert.deepEqual(pcp.ERROR_CODES, [
    ...SERVER_CODES,
    'BAD_RESPONSE',
    'TIMEOUT',
    'SERVER_UNREACHABLE',
    'NO_GATEWAY',
    'INVALID_ARGUMENT',
    'IO',
    'CLOSED',
    'CANCELLED',
    'UNSUPPORTED_BY_NATPMP',
  ]);
});

for (const code of SERVER_CODES) {
  test(`a server answering ${code} rejects map() and createMapping() with err.code ${code}`, async (t) => {
    const { server, client } = setup(t);
    server.forceResult(code, 30);
    const err = await client.map(8080).then(
      () => assert.fail('should have failed'),
      (e) => e,
    );
    assert.ok(err instanceof Error);
    assert.ok(err instanceof pcp.PCPError);
    assert.equal(err.code, code);
    assert.equal(err.name, 'PCPError');
    assert.ok(err.message.length > 10);
    // RFC 6887 section 7.4, as Python's short_term and C's pcp_status_is_short_term say.
    assert.equal(err.shortTerm, ['NETWORK_FAILURE', 'NO_RESOURCES', 'USER_EX_QUOTA'].includes(code));
    if (code === 'UNSUPP_VERSION') {
      assert.equal(err.retryAfter, undefined, 'version negotiation is no refusal');
    } else {
      // RFC 6887 section 8.3: the error's lifetime is retryAfter, and the same
      // request within it fails at once without reaching the server.
      assert.equal(err.retryAfter, 30);
      const before = server.requestsReceived;
      const again = await client.map(8080).then(() => assert.fail('should have failed'), (e) => e);
      assert.equal(again.code, code);
      assert.ok(again.retryAfter > 0 && again.retryAfter <= 30, String(again.retryAfter));
      assert.equal(server.requestsReceived, before);
    }
    const classic = new pcp.PCPClient(server.address, { listenAnnounce: false });
    await assert.rejects(classic.createMapping(8081), { code });
    server.forceResult(null);
    await classic.close();
  });
}

test("napi-rs's conversion errors in JavaScript's words, with or without the call's name", () => {
  const { fromNative } = require('../lib/errors');
  const napi = (message) => Object.assign(new Error(message), { code: 'NumberExpected' });
  const e = fromNative(napi('Failed to convert napi value String into rust type `f64`'));
  assert.ok(e instanceof TypeError && e.code === 'INVALID_ARGUMENT');
  assert.strictEqual(e.message, 'an argument must be a number, got a string');
  assert.strictEqual(fromNative(napi('Failed to convert napi value String into rust type `f64`'), 'dropNext').message,
    'an argument of dropNext() must be a number, got a string');
});

test('a failed first request is also a failed event', async (t) => {
  const { server, client } = setup(t);
  server.forceResult('NO_RESOURCES');
  const failed = new Promise((resolve) => client.once('failed', (id, err) => resolve({ id, err })));
  await assert.rejects(client.map(8080), { code: 'NO_RESOURCES' });
  const { id, err } = await failed;
  assert.equal(typeof id, 'number');
  assert.equal(err.code, 'NO_RESOURCES');
});

test('TIMEOUT: the server never answers within the deadline', async (t) => {
  const { server, client } = setup(t, {}, { deadline: 300 });
  server.dropNext(1000);
  await assert.rejects(client.map(8080), { code: 'TIMEOUT' });
  // Per request, too.
  await assert.rejects(client.announce(), { code: 'TIMEOUT' });
  server.dropNext(0);
  await assert.rejects(client.map(8081, { deadline: 200 }).then(() => { throw new Error('ok'); }), /ok/);
});

test('SERVER_UNREACHABLE: nothing listens on the server port', async (t) => {
  const server = new pcp.testing.Server();
  const addr = server.address;
  server.stop();
  const client = new pcp.Client(addr, { listenAnnounce: false });
  t.after(() => client.close());
  await assert.rejects(client.map(8080), { code: 'SERVER_UNREACHABLE' });
});

test('NO_GATEWAY: no candidate answers discovery', async () => {
  const server = new pcp.testing.Server();
  const addr = server.address;
  server.stop();
  await assert.rejects(pcp.discover({ candidates: [addr] }), { code: 'NO_GATEWAY', message: /no PCP server answered/ });
  await assert.rejects(pcp.discover({ candidates: [] }), { code: 'NO_GATEWAY' });
  await assert.rejects(pcp.Client.discover({ candidates: [addr] }), { code: 'NO_GATEWAY' });
});

test('INVALID_ARGUMENT: bad arguments reject (or throw from constructors) with a clear message', async (t) => {
  const { client } = setup(t);
  const cases = [
    [() => client.map(), /internalPort must be an integer/],
    // The core's rule and message for protocol text (config::parse_protocol), as in Python.
    [() => client.map(8080, { protocol: 'sctp-ish' }), /protocol: "sctp-ish" is not tcp, udp, all or a number 0-255/],
    [() => client.map(8080, { lifetime: -5 }), /lifetime: -5 is not a whole number from 0 to 4294967295/],
    [() => client.map(8080, { externalAddress: 'x' }), /externalAddress: "x" is not an IPv4 or IPv6 address/],
    [() => client.map(8080, { thirdParty: 'nope' }), /thirdParty: "nope" is not an IPv4 or IPv6 address/],
    // The core's rule, as in C and Python: one pair of brackets or none.
    [() => client.map(8080, { externalAddress: '[192.0.2.1' }), /externalAddress: "\[192.0.2.1" is not an IPv4/],
    [() => client.map(8080, { filters: 'all' }), /filters must be an array/],
    [() => client.map(8080, { nonce: 'abc' }), /nonce: "abc" is not 24 hex digits/],
    [() => client.map(8080, { deadline: 0 }), /the request deadline must be more than 0/],
    [() => client.map(8080, { signal: 'stop' }), /signal must be an AbortSignal/],
    // TCP port 0 is legal ("all ports", RFC 6887 11.1); a port with protocol 0 (all) is not.
    [() => client.map(80, { protocol: 0 }), /internal port must be 0/i],
    [() => client.peer(8080), /peer\(\) takes an object/],
    [() => client.peer({ internalPort: 1, remotePort: 2 }), /remoteAddress must be an IP address/],
    [() => client.delete('first'), /delete\(\) takes a Mapping or a mapping id/],
    [() => client.delete(123456), /no such mapping/],
    [() => pcp.discover({ candidates: 'x' }), /candidates must be an array/],
  ];
  for (const [call, message] of cases) {
    await assert.rejects(call(), (e) => {
      assert.equal(e.code, 'INVALID_ARGUMENT', `${call}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(() => new pcp.Client(), { name: 'TypeError', code: 'INVALID_ARGUMENT', message: /server must be/ });
  assert.throws(() => new pcp.Client(''), { code: 'INVALID_ARGUMENT', message: /the server address is empty/ });
  assert.throws(() => new pcp.Client('127.0.0.1:0'), { code: 'INVALID_ARGUMENT', message: /port must not be 0/ });
  assert.throws(() => new pcp.Client('0.0.0.0'), { code: 'INVALID_ARGUMENT', message: /unspecified/ });
  assert.throws(() => new pcp.Client('127.0.0.1', { deadline: 'soon' }), { code: 'INVALID_ARGUMENT', message: /deadline/ });
  // One rule for every language, the core's.
  assert.throws(() => new pcp.Client('127.0.0.1', { deadline: 0 }), { code: 'INVALID_ARGUMENT', message: /the request deadline must be more than 0/ });
});

test('IO: the local address cannot be bound', () => {
  // 192.0.2.1 (TEST-NET-1) is not an address of this host: bind fails, nothing is sent.
  assert.throws(() => new pcp.Client('127.0.0.1:5351', { localAddress: '192.0.2.1', listenAnnounce: false }), (e) => {
    assert.equal(e.code, 'IO');
    assert.ok(e instanceof pcp.PCPError);
    return true;
  });
});

test('CLOSED: calls after close()', async () => {
  const server = new pcp.testing.Server();
  const client = new pcp.Client(server.address, { listenAnnounce: false });
  await client.close();
  for (const call of [() => client.map(8080), () => client.announce(), () => client.externalAddress()]) {
    await assert.rejects(call(), { code: 'CLOSED' });
  }
  // What the client knows needs no request: it stays readable, as in Python.
  assert.strictEqual(await client.internalAddress(), '127.0.0.1');
  server.stop();
});

test('while close() runs, listeners may still be added and removed, and no request starts', async () => {
  const server = new pcp.testing.Server();
  const client = new pcp.Client(server.address, { listenAnnounce: false, closeTimeout: 2000 });
  await client.map(8080);
  server.setDelay(100); // the delete is still unanswered below
  const closing = client.close();
  const onDeleted = () => {};
  client.on('deleted', onDeleted);
  client.off('deleted', onDeleted);
  await assert.rejects(client.map(8081), { code: 'CLOSED' });
  await closing;
  assert.equal(server.mappingCount, 0);
  server.stop();
});

test('a text option of another type is a TypeError naming it', async () => {
  const server = new pcp.testing.Server();
  const client = new pcp.Client(server.address, { listenAnnounce: false });
  for (const name of ['remoteAddress', 'thirdParty', 'nonce', 'externalAddress']) {
    await assert.rejects(client.peer({ internalPort: 80, remoteAddress: '198.51.100.1', remotePort: 443, [name]: 5 }), {
      name: 'TypeError', code: 'INVALID_ARGUMENT', message: new RegExp(`^${name} must be a string, got 5`),
    });
  }
  await assert.rejects(client.peer({ internalPort: 80, remoteAddress: '198.51.100.1', remotePort: '443' }), {
    name: 'TypeError', code: 'INVALID_ARGUMENT', message: /^remotePort must be an integer/,
  });
  await client.close();
  server.stop();
});

test('CLOSED: requests in flight when the client closes', async () => {
  const server = new pcp.testing.Server();
  const client = new pcp.Client(server.address, { listenAnnounce: false, closeTimeout: 100 });
  server.dropNext(1000);
  const p = assert.rejects(client.map(8080), { code: 'CLOSED' });
  await client.close();
  await p;
  server.stop();
});

test('BAD_RESPONSE: its code and class exist (the core drops malformed answers silently)', () => {
  assert.ok(pcp.ERROR_CODES.includes('BAD_RESPONSE'));
  const e = new pcp.PCPError('BAD_RESPONSE', 'bad response from the server: x');
  assert.ok(e instanceof Error);
  assert.equal(e.code, 'BAD_RESPONSE');
});
