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

test('deleteMapping of a port this client did not map succeeds and sends nothing (the core rule)', async (t) => {
  const { server, client } = serverAndClient(t);
  await client.createMapping(1000);
  const before = server.requestsReceived;
  await client.deleteMapping(1234);
  assert.equal(server.requestsReceived, before);
  assert.equal(server.mappingCount, 1);
});

test('deleteMapping after close() rejects with CLOSED', async (t) => {
  const { client } = serverAndClient(t);
  await client.createMapping(8080);
  await client.close();
  await assert.rejects(client.deleteMapping(8080), { code: 'CLOSED' });
  await assert.rejects(client.createMapping(8080), { code: 'CLOSED' });
});

// The shared table of tests/classic/cases.txt: the same cases as the Rust,
// Python and C suites.
const CASES = require('node:fs')
  .readFileSync(require('node:path').join(__dirname, '..', '..', '..', 'tests', 'classic', 'cases.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

test('the shared case table is there', () => assert.ok(CASES.length >= 10));

for (const line of CASES) {
  const [name, steps] = [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)];
  test(`shared case ${name}`, async (t) => {
    const { server, client } = serverAndClient(t);
    const nonces = new Map();
    const full = await client.client();
    for (const step of steps.split(';').map((s) => s.trim())) {
      const w = step.split(/\s+/);
      if (w[0] === 'map') {
        const [port, external, life, expect] = [Number(w[1]), Number(w[2]), Number(w[3]), w[4]];
        let r;
        try {
          r = await client.createMapping(port, external, 6, life);
        } catch (e) {
          assert.equal(e.code, expect, `${name}: ${step}: ${e.message}`);
          continue;
        }
        assert.ok(expect === 'new' || expect === 'same', `${name}: ${step}: succeeded`);
        const { nonce } = full.findMapping(port, 6);
        assert.equal(nonces.get(port) === nonce, expect === 'same', `${name}: ${step}`);
        nonces.set(port, nonce);
        if (external && expect === 'new') assert.equal(r.externalPort, external, `${name}: ${step}`);
      } else if (w[0] === 'delete') {
        try {
          await client.deleteMapping(Number(w[1]), 6);
          assert.equal(w[2], 'ok', `${name}: ${step}`);
        } catch (e) {
          assert.equal(e.code, w[2], `${name}: ${step}: ${e.message}`);
        }
      } else if (w[0] === 'server_mappings') {
        assert.equal(server.mappingCount, Number(w[1]), `${name}: ${step}`);
      } else if (w[0] === 'refuse') {
        server.forceResult(w[1] === 'none' ? null : w[1], 0);
      } else {
        assert.fail(`${name}: unknown step ${step}`);
      }
    }
  });
}

test('8 concurrent createMapping calls for one port share one mapping', async (t) => {
  const { server, client } = serverAndClient(t);
  const results = await Promise.all(Array.from({ length: 8 }, () => client.createMapping(8095)));
  for (const r of results) assert.deepEqual(r, results[0]);
  assert.equal(server.mappingCount, 1);
});

test('reading a mapping twice does not move its times (the core keeps them)', async (t) => {
  const { client } = serverAndClient(t);
  await client.createMapping(8096);
  const full = await client.client();
  const a = full.findMapping(8096);
  await new Promise((r) => setTimeout(r, 20));
  const b = full.findMapping(8096);
  const [c] = full.mappings();
  assert.equal(a.grantedAt.getTime(), b.grantedAt.getTime());
  assert.equal(a.expiresAt.getTime(), c.expiresAt.getTime());
  assert.equal(a.expiresAt.getTime() - a.grantedAt.getTime(), a.lifetime * 1000);
  assert.ok(a.refresh() && a.expiresAt.getTime() === b.expiresAt.getTime());
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
  // Asked again: the same mapping (a new nonce would be refused), also with
  // a new lifetime, as in Python and the core.
  const again = await client.createPeerMapping(6000, '198.51.100.20', 443, 6, 600);
  assert.deepEqual([again.externalPort, again.lifetime, server.mappingCount], [r.externalPort, 600, 1]);
  assert.equal(server.mappings()[0].nonce, m.nonce);
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
  await assert.rejects(client.createMapping(70000), { code: 'INVALID_ARGUMENT', message: /internalPort: 70000 is not a whole number from 0 to 65535/ });
  await assert.rejects(client.createMapping('http'), { code: 'INVALID_ARGUMENT', message: /internalPort/ });
  await assert.rejects(client.createMapping(8080, -1), { code: 'INVALID_ARGUMENT', message: /externalPort/ });
  await assert.rejects(client.createMapping(8080, 0, 300), { code: 'INVALID_ARGUMENT', message: /protocol/ });
  await assert.rejects(client.createMapping(8080, 0, 6, 1.5), { code: 'INVALID_ARGUMENT', message: /lifetime/ });
  await assert.rejects(client.createPeerMapping(8080, 'not-an-ip', 80), { code: 'INVALID_ARGUMENT', message: /remoteAddress: "not-an-ip" is not an IPv4 or IPv6 address/ });
  await assert.rejects(client.createPeerMapping(8080, '198.51.100.1', 99999), { code: 'INVALID_ARGUMENT', message: /remotePort/ });
  assert.throws(() => new PCPClient('999.1.1.1:x'), { code: 'INVALID_ARGUMENT' });
  // A port given as a string is a TypeError (as in Python), with the same code.
  await assert.rejects(client.createMapping('8080'), (e) => e instanceof TypeError && e.code === 'INVALID_ARGUMENT');
  // A rejected call does not break the client.
  const r = await bounded(client.createMapping(8080), 'createMapping');
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

test("new PCPClient('') is INVALID_ARGUMENT, as in Python and C (only no server at all discovers)", () => {
  assert.throws(() => new PCPClient('', { listenAnnounce: false }), (err) => {
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /the server address is empty/);
    return true;
  });
});
