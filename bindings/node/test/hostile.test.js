'use strict';
// The hostile-answer table (tests/hostile/cases.json) against the Node
// client: the test server answers with each crafted case, and the request
// must end as the table says. Rows marked pending are skipped with their
// reason, never reported as passed.
const { test } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const fs = require('node:fs');
const { pcp, bounded } = require('./helpers');

const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'tests', 'hostile', 'cases.json'), 'utf8'));

async function outcome(client, port, request) {
  // "request": "prefer_failure": suggest the internal port, with PREFER_FAILURE.
  const options =
    request === 'prefer_failure' ? { protocol: 'tcp', externalPort: port, preferFailure: true } : { protocol: 'tcp' };
  try {
    const m = await bounded(client.map(port, options), `map of ${port}`);
    if (m.externalAddress === table.external_ip && m.externalPort !== 0) return 'taken';
    return `taken with a wrong answer: ${m.externalAddress}:${m.externalPort}`;
  } catch (e) {
    if (!e.code) throw e;
    return e.code === 'TIMEOUT' ? 'timeout' : `error ${e.code}`;
  }
}

for (const row of table.cases) {
  const want = row.expect === 'error' ? `error ${row.error}` : row.expect;
  const skip = row.pending ? `PENDING (want ${want}): ${row.pending}` : false;
  test(`hostile ${row.case}: ${want}`, { skip }, async () => {
    const server = new pcp.testing.Server();
    server.setHostile(row.case);
    const client = new pcp.Client(server.address, { listenAnnounce: false, deadline: table.deadline_ms });
    try {
      const got = [];
      for (let i = 0; i < (row.requests || 1); i++) got.push(await outcome(client, 7000 + i, row.request));
      assert.deepStrictEqual(got, got.map(() => want));
    } finally {
      server.setHostile(null);
      await client.close();
      server.stop();
    }
  });
}

test('setHostile and setLoss refuse bad arguments with INVALID_ARGUMENT', () => {
  const server = new pcp.testing.Server();
  try {
    for (const bad of ['no such case', 3, {}]) {
      assert.throws(() => server.setHostile(bad), (e) => e.code === 'INVALID_ARGUMENT');
    }
    for (const bad of [-0.1, 1.5, NaN, '0.5']) {
      assert.throws(() => server.setLoss(bad), (e) => e.code === 'INVALID_ARGUMENT');
    }
    server.setLoss(0);
    server.setHostile(null);
  } finally {
    server.stop();
  }
});

test("the test server's argument errors are the core's messages, as in C and Python", () => {
  const server = new pcp.testing.Server();
  const says = (text) => ({ code: 'INVALID_ARGUMENT', message: `invalid argument: ${text}` });
  try {
    assert.throws(() => server.setHostile('no such case'), says('name: no hostile case named "no such case"'));
    assert.throws(() => server.setLoss(1.5), says('loss: 1.5 is not a fraction from 0 to 1'));
    assert.throws(() => server.setLoss(NaN), says('loss: NaN is not a fraction from 0 to 1'));
    assert.throws(() => new pcp.testing.Server({ listen: 'nowhere' }), says('listen: "nowhere" is not an address:port'));
    assert.throws(() => new pcp.testing.Server({ mode: 'upnp' }), says('mode: "upnp" is not "both", "pcp" or "natpmp"'));
    assert.throws(() => new pcp.testing.Server({ minLifetime: 10, maxLifetime: 5 }),
      says('min_lifetime (10) must not exceed max_lifetime (5)'));
    server.setLoss(1);
    server.setLoss(0);
  } finally {
    server.stop();
  }
});
