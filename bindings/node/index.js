'use strict';
// pcp-rs: a Port Control Protocol (PCP, RFC 6887) client for Node.js.
//
// The protocol (requests, retransmission, renewals, epoch checks, ANNOUNCE)
// runs in the Rust core on its own thread; this package only turns its
// results into Promises, its events into EventEmitter events and its errors
// into `Error`s with a stable `code`. See README.md. One concept a file in
// lib/: load-native (finding the addon), errors,
// args (argument checks), client (discover, Mapping, Client), classic
// (PCPClient), testing (Server).

const { ERROR_CODES, PCPError } = require('./lib/errors');
const { Protocol, Option } = require('./lib/args');
const { discover, Mapping, Client } = require('./lib/client');
const { PCPClient } = require('./lib/classic');
const { Server } = require('./lib/testing');

module.exports = {
  PCPClient,
  Client,
  Mapping,
  PCPError,
  ERROR_CODES,
  Protocol,
  Option,
  discover,
  testing: { Server },
};
