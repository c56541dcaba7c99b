'use strict';
// Shared helpers: every wait is bounded, so a broken build fails instead of hanging.
const { once } = require('node:events');
const pcp = require('..');

const BOUND_MS = 15000;

/** Resolves with `promise`, or rejects after `ms` (a bound, not a timing assertion). */
function bounded(promise, what, ms = BOUND_MS) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what} after ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** The arguments of the next `event` on `emitter`, within the bound. */
function nextEvent(emitter, event, ms) {
  return bounded(once(emitter, event), `the '${event}' event`, ms);
}

/** A fresh test server and a Client talking to it; `t.after` cleans up. */
function setup(t, serverOptions = {}, clientOptions = {}) {
  const server = new pcp.testing.Server(serverOptions);
  const client = new pcp.Client(server.address, { listenAnnounce: false, announceDelayMax: 0, ...clientOptions });
  t.after(async () => {
    await client.close();
    server.stop();
  });
  return { server, client };
}

module.exports = { pcp, bounded, nextEvent, setup };
