'use strict';
// JavaScript arguments checked for type and shape and turned into what the
// native side takes; ranges and cross-field rules are the core's.

const { invalid, typeError } = require('./errors');

const EVENTS = new Set(['renewed', 'updated', 'lost', 'failed', 'deleted', 'ipChanged', 'internalIpChanged',
  'serverRestarted']);

const Protocol = Object.freeze({ ALL: 0, TCP: 6, UDP: 17 });
/** The PCP options this client supports (their codes on the wire). */
const Option = Object.freeze({ THIRD_PARTY: 1, PREFER_FAILURE: 2, FILTER: 3 });

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return `${String(v)} (${typeof v})`;
}

// A number, never a string such as '80' (Python refuses it too): a TypeError.
function toInt(v, name, min, max) {
  if (typeof v !== 'number') throw typeError(`${name} must be an integer ${min}..${max} (a number), got ${describe(v)}`);
  if (!Number.isInteger(v) || v < min || v > max) throw invalid(`${name} must be an integer ${min}..${max}, got ${describe(v)}`);
  return v;
}

function toProtocol(v, name = 'protocol') {
  if (typeof v === 'string') {
    const p = { tcp: 6, udp: 17, all: 0, any: 0 }[v.trim().toLowerCase()];
    if (p !== undefined) return p;
  }
  const what = `${name} must be 6 (TCP), 17 (UDP), another protocol number 0..255, 'tcp' or 'udp', got ${describe(v)}`;
  if (typeof v !== 'number' && typeof v !== 'string') throw typeError(what);
  // A protocol's name or number as text is fine, as in Python (the core's `Protocol::parse`).
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (!Number.isInteger(n) || n < 0 || n > 255) throw invalid(what);
  return n;
}

function toAddress(v, name) {
  if (typeof v !== 'string' || v.trim() === '') throw invalid(`${name} must be an IP address string, got ${describe(v)}`);
  return v.trim();
}

// A number of milliseconds; its range is the core's to check.
function optionalMs(v, name) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw invalid(`${name} must be a number of milliseconds, got ${describe(v)}`);
  return v;
}

function checkSignal(signal) {
  if (signal === undefined || signal === null) return undefined;
  if (typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw invalid(`signal must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

function checkObject(v, name) {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object') throw invalid(`${name} must be an object, got ${describe(v)}`);
  return v;
}

/** The `signal` of an options object (`{ signal }`) that has no other option. */
function optionsSignal(options) {
  return checkSignal(checkObject(options, 'options').signal);
}

function clientOptions(o) {
  o = checkObject(o, 'options');
  const out = {};
  if (o.listenAnnounce !== undefined) out.listenAnnounce = Boolean(o.listenAnnounce);
  if (o.deadline !== undefined) out.deadlineMs = optionalMs(o.deadline, 'deadline');
  if (o.deleteOnClose !== undefined) out.deleteOnClose = Boolean(o.deleteOnClose);
  if (o.closeTimeout !== undefined) out.closeTimeoutMs = optionalMs(o.closeTimeout, 'closeTimeout');
  if (o.localAddress !== undefined) out.localAddress = toAddress(o.localAddress, 'localAddress');
  if (o.announcePort !== undefined) out.announcePort = toInt(o.announcePort, 'announcePort', 1, 65535);
  if (o.announceDelayMax !== undefined) out.announceDelayMaxMs = optionalMs(o.announceDelayMax, 'announceDelayMax');
  if (o.protocol !== undefined) {
    if (!['auto', 'pcp', 'natpmp'].includes(o.protocol)) {
      throw invalid(`protocol must be 'auto', 'pcp' or 'natpmp', got ${describe(o.protocol)}`);
    }
    out.protocol = o.protocol;
  }
  return out;
}

function discoverOptions(o) {
  o = checkObject(o, 'options');
  const out = {};
  const list = (v, name) => {
    if (!Array.isArray(v)) throw invalid(`${name} must be an array of "host[:port]" strings, got ${describe(v)}`);
    return v.map((s, i) => toAddress(s, `${name}[${i}]`));
  };
  if (o.candidates !== undefined) out.candidates = list(o.candidates, 'candidates');
  if (o.servers !== undefined) out.servers = list(o.servers, 'servers');
  if (o.deadline !== undefined) out.deadlineMs = optionalMs(o.deadline, 'deadline');
  if (o.initialTimeout !== undefined) out.initialTimeoutMs = optionalMs(o.initialTimeout, 'initialTimeout');
  return out;
}

// MAP arguments for the native side: four numbers, and `options` (an
// object) only when a rarely used option is given.
function mapOptions(o) {
  const out = {
    protocol: o.protocol === undefined ? 6 : toProtocol(o.protocol),
    internalPort: toInt(o.internalPort, 'internalPort', 0, 65535),
    externalPort: 0,
    lifetime: 3600,
    options: undefined,
  };
  if (o.externalPort !== undefined && o.externalPort !== null) out.externalPort = toInt(o.externalPort, 'externalPort', 0, 65535);
  if (o.lifetime !== undefined && o.lifetime !== null) out.lifetime = toInt(o.lifetime, 'lifetime', 0, 0xffffffff);
  // Made only when needed: most calls give none of these.
  let more;
  if (o.externalAddress !== undefined && o.externalAddress !== null) {
    (more ??= {}).externalAddress = toAddress(o.externalAddress, 'externalAddress');
  }
  if (o.preferFailure !== undefined) {
    (more ??= {}).preferFailure = Boolean(o.preferFailure);
  }
  if (o.thirdParty !== undefined && o.thirdParty !== null) {
    (more ??= {}).thirdParty = toAddress(o.thirdParty, 'thirdParty');
  }
  if (o.filters !== undefined && o.filters !== null) {
    if (!Array.isArray(o.filters)) throw invalid(`filters must be an array, got ${describe(o.filters)}`);
    (more ??= {}).filters = o.filters.map((f, i) => {
      f = checkObject(f, `filters[${i}]`);
      const r = { remoteAddress: toAddress(f.remoteAddress, `filters[${i}].remoteAddress`) };
      if (f.prefixLength !== undefined) r.prefixLength = toInt(f.prefixLength, `filters[${i}].prefixLength`, 0, 128);
      if (f.remotePort !== undefined) r.remotePort = toInt(f.remotePort, `filters[${i}].remotePort`, 0, 65535);
      return r;
    });
  }
  if (o.nonce !== undefined && o.nonce !== null) {
    if (typeof o.nonce !== 'string') throw invalid(`nonce must be 24 hex digits, got ${describe(o.nonce)}`);
    (more ??= {}).nonce = o.nonce;
  }
  if (o.deadline !== undefined && o.deadline !== null) {
    (more ??= {}).deadlineMs = optionalMs(o.deadline, 'deadline');
  }
  out.options = more;
  return out;
}

function peerOptions(o) {
  const out = {
    protocol: o.protocol === undefined ? 6 : toProtocol(o.protocol),
    internalPort: toInt(o.internalPort, 'internalPort', 0, 65535),
    remoteAddress: toAddress(o.remoteAddress, 'remoteAddress'),
    remotePort: toInt(o.remotePort, 'remotePort', 0, 65535),
  };
  if (o.externalPort !== undefined && o.externalPort !== null) out.externalPort = toInt(o.externalPort, 'externalPort', 0, 65535);
  if (o.externalAddress !== undefined && o.externalAddress !== null) out.externalAddress = toAddress(o.externalAddress, 'externalAddress');
  if (o.lifetime !== undefined && o.lifetime !== null) out.lifetime = toInt(o.lifetime, 'lifetime', 0, 0xffffffff);
  if (o.thirdParty !== undefined && o.thirdParty !== null) out.thirdParty = toAddress(o.thirdParty, 'thirdParty');
  if (o.nonce !== undefined && o.nonce !== null) {
    if (typeof o.nonce !== 'string') throw invalid(`nonce must be 24 hex digits, got ${describe(o.nonce)}`);
    out.nonce = o.nonce;
  }
  if (o.deadline !== undefined) out.deadlineMs = optionalMs(o.deadline, 'deadline');
  return out;
}

module.exports = {
  EVENTS, Protocol, Option, describe, toInt, toProtocol, toAddress, optionalMs, checkSignal, checkObject, optionsSignal,
  clientOptions, discoverOptions, mapOptions, peerOptions,
};
