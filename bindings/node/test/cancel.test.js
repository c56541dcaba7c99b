'use strict';
// AbortSignal cancels a request; nothing is left behind.
const test = require('node:test');
const assert = require('node:assert/strict');
const { setup, bounded } = require('./helpers');

test('aborting a map in flight rejects with CANCELLED (an AbortError)', async (t) => {
  const { server, client } = setup(t);
  server.dropNext(1000); // the request stays unanswered
  const ac = new AbortController();
  const p = client.map(8080, { signal: ac.signal });
  ac.abort(new Error('user gave up'));
  const err = await bounded(p.then(() => assert.fail('should have been cancelled'), (e) => e), 'the cancelled map');
  assert.equal(err.code, 'CANCELLED');
  assert.equal(err.name, 'AbortError');
  assert.equal(err.cause.message, 'user gave up');
  assert.deepEqual(client.mappings(), []);
  // The client carries on.
  server.dropNext(0);
  const m = await client.map(8081);
  assert.equal(m.internalPort, 8081);
});

test('an already aborted signal rejects at once and sends nothing', async (t) => {
  const { server, client } = setup(t);
  const before = server.requestsReceived;
  await assert.rejects(client.map(8080, { signal: AbortSignal.abort() }), { code: 'CANCELLED' });
  await assert.rejects(client.announce({ signal: AbortSignal.abort() }), { code: 'CANCELLED' });
  assert.equal(server.requestsReceived, before);
});

test('aborting announce, externalAddress, peer and delete', async (t) => {
  const { server, client } = setup(t);
  const m = await client.map(9000);
  server.dropNext(1000);
  for (const start of [
    (signal) => client.announce({ signal }),
    (signal) => client.externalAddress({ signal }),
    (signal) => client.peer({ internalPort: 9001, remoteAddress: '198.51.100.1', remotePort: 80, signal }),
  ]) {
    const ac = new AbortController();
    const p = start(ac.signal);
    ac.abort();
    await assert.rejects(bounded(p, 'a cancelled request'), { code: 'CANCELLED' });
  }
  // A delete cannot be un-sent; aborting it stops the wait.
  const ac = new AbortController();
  const p = client.delete(m, { signal: ac.signal });
  ac.abort();
  await assert.rejects(bounded(p, 'a cancelled delete'), (e) => e.code === 'CANCELLED' || e.code === 'TIMEOUT');
});

test('a map answered after the abort is deleted again', async (t) => {
  const { server, client } = setup(t);
  server.setDelay(200); // answers arrive late, after the abort
  const ac = new AbortController();
  const p = client.map(8080, { signal: ac.signal });
  // Abort once the request has reached the server.
  while (server.requestsReceived === 0) await new Promise((r) => setImmediate(r));
  ac.abort();
  await assert.rejects(bounded(p, 'the cancelled map'), { code: 'CANCELLED' });
  // Whatever the server granted is deleted: wait (bounded) for it to empty.
  await bounded(
    (async () => {
      while (server.mappingCount !== 0 || client.mappings().length !== 0) await new Promise((r) => setTimeout(r, 20));
    })(),
    'the server to drop the cancelled mapping',
  );
  server.setDelay(0);
});

test('AbortSignal.timeout works as a per-call limit', async (t) => {
  const { server, client } = setup(t);
  server.dropNext(1000);
  await assert.rejects(bounded(client.map(8080, { signal: AbortSignal.timeout(50) }), 'the timed-out map'), { code: 'CANCELLED' });
});
