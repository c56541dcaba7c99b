'use strict';
// JavaScript arguments checked for type and shape and turned into what the
// native side takes; ranges and cross-field rules are the core's.

const native = require('./load-native');
const { invalid, typeError } = require('./errors');

// The events the native side forwards while someone listens (from src/convert.rs).
const EVENTS = new Set(native.eventNames());

const Protocol = Object.freeze({ ALL: 0, TCP: 6, UDP: 17 });
/** The PCP options this client supports (their codes on the wire). */
const Option = Object.freeze({ THIRD_PARTY: 1, PREFER_FAILURE: 2, FILTER: 3 });

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return `${String(v)} (${typeof v})`;
}

// A protocol number or name; which ones exist is the core's to say
// (`config::parse_protocol`, as in Python).
function toProtocol(v, name = 'protocol') {
  if (typeof v !== 'number' && typeof v !== 'string') {
    throw typeError(`${name} must be 6 (TCP), 17 (UDP), another protocol number 0..255, 'tcp' or 'udp', got ${describe(v)}`);
  }
  return v;
}

function checkSignal(signal) {
  if (signal === undefined || signal === null) return undefined;
  if (typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw invalid(`signal must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

// An options object (none: `{}`); `what` names it in the error, or (`required`)
// is the whole message.
function checkObject(v, what, required = false) {
  if (!required && (v === undefined || v === null)) return {};
  if (typeof v !== 'object' || v === null) throw invalid(`${required ? what : `${what} must be an object`}, got ${describe(v)}`);
  return v;
}

/** The `signal` of an options object (`{ signal }`) that has no other option. */
function optionsSignal(options) {
  return checkSignal(checkObject(options, 'options').signal);
}

// Client and discovery options pass to the native side as given: napi-rs
// converts the types (a TypeError naming the field, see errors.js), the core
// checks the values.
function discoverOptions(o) {
  o = checkObject(o, 'options');
  checkArray(o.candidates, 'candidates');
  checkArray(o.servers, 'servers');
  return o;
}

// napi-rs would only say it "failed to get Array length".
function checkArray(v, name) {
  if (v !== undefined && v !== null && !Array.isArray(v)) throw typeError(`${name} must be an array, got ${describe(v)}`);
}

// A number for the native side, which checks its range; unless `required`,
// undefined or null for the default. Never a string such as '80' (a
// TypeError, as in Python).
function toNumber(v, name, required = false) {
  if (typeof v !== 'number' && (required || (v !== undefined && v !== null))) {
    throw typeError(`${name} must be an integer (a number), got ${describe(v)}`);
  }
  return v;
}

// MAP, PEER and delete-by-nonce options for the native side: the caller's
// object with the protocol as its number and the numbers checked for type
// (napi-rs would read '80' as no number at all, not as a wrong one); the
// rest napi-rs converts (a TypeError naming the field), the core checks.
// `classic`: only the four numbers the classic MAP passes (the loop below
// costs its round trip measurably).
function requestOptions(o, classic = false) {
  const s = {
    ...o,
    protocol: o.protocol === undefined ? 6 : toProtocol(o.protocol),
    internalPort: toNumber(o.internalPort, 'internalPort', true),
    externalPort: toNumber(o.externalPort, 'externalPort'),
    lifetime: toNumber(o.lifetime, 'lifetime'),
  };
  if (classic) return s;
  checkArray(o.filters, 'filters');
  s.remotePort = toNumber(o.remotePort, 'remotePort');
  // napi-rs would name only the Rust type of a text option given otherwise.
  for (const name of ['externalAddress', 'remoteAddress', 'thirdParty', 'nonce']) {
    const v = o[name];
    if (v !== undefined && v !== null && typeof v !== 'string') throw typeError(`${name} must be a string, got ${describe(v)}`);
  }
  return s;
}

module.exports = {
  EVENTS, Protocol, Option, describe, toNumber, toProtocol, checkSignal, checkObject, optionsSignal, discoverOptions,
  requestOptions,
};
