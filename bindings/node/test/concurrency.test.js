'use strict';
// Eight concurrent Promise chains on one client, a thousand requests each,
// mixing map, delete and peer on ports of their own and on one port they
// all share: every call gets its own answer, nothing lost or crossed. The
// shared port uses the non-classic map(): each call is its own mapping with
// its own nonce, so the server grants it to one holder at a time and
// refuses the others with NOT_AUTHORIZED (the classic API joins them).
const { test } = require('node:test');
const assert = require('node:assert');
const { pcp, bounded } = require('./helpers');

const CHAINS = 8;
const REQUESTS = 1000;
const SHARED_PORT = 9999;

test('8 chains x 1000 mixed requests on one client each get their own answer', async () => {
  const server = new pcp.testing.Server();
  const client = new pcp.Client(server.address, { listenAnnounce: false, deadline: 20000 });
  try {
    let sharedGranted = 0;
    const chain = async (t) => {
      for (let i = 0; i < REQUESTS; i++) {
        const port = 10000 + t * 500 + (i % 400);
        const protocol = i % 2 === 0 ? 'tcp' : 'udp';
        if (i % 3 === 0) {
          const m = await client.map(port, { protocol, externalPort: port });
          assert.deepStrictEqual([m.internalPort, m.externalPort], [port, port], 'an answer for another request');
          assert.strictEqual(m.externalAddress, server.externalAddress);
          await m.delete();
        } else if (i % 3 === 1) {
          const remoteAddress = `198.51.100.${t + 1}`;
          const m = await client.peer({ internalPort: port, protocol, remoteAddress, remotePort: 1000 + i });
          assert.deepStrictEqual([m.internalPort, m.remoteAddress, m.remotePort], [port, remoteAddress, 1000 + i], 'crossed');
          await m.delete();
        } else {
          let m;
          try {
            m = await client.map(SHARED_PORT, { protocol: 'tcp' });
          } catch (e) {
            if (e.code === 'NOT_AUTHORIZED') continue;
            throw e;
          }
          assert.strictEqual(m.internalPort, SHARED_PORT);
          sharedGranted++;
          await m.delete();
        }
      }
    };
    await bounded(Promise.all(Array.from({ length: CHAINS }, (_, t) => chain(t))), 'the 8 chains', 300000);
    assert.ok(sharedGranted > 0, 'the shared port was never granted');
    assert.strictEqual(server.mappingCount, 0, 'the server holds nothing after every delete');
  } finally {
    await client.close();
    server.stop();
  }
});
