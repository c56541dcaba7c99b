'use strict';
// Errors: `PCPError` with the core's stable `code`.

const native = require('./load-native');

/** Every stable `err.code` the package uses, from the core. */
const ERROR_CODES = Object.freeze(native.errorCodes());

/** An error from pcp-rs: `code` is one of `ERROR_CODES`. */
class PCPError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = code === 'CANCELLED' ? 'AbortError' : 'PCPError';
    this.code = code;
  }
}

function invalid(message) {
  return new PCPError('INVALID_ARGUMENT', message);
}

// Native functions throw "CODE\0message" for errors they report synchronously.
function fromNative(e) {
  if (e instanceof PCPError) return e;
  const msg = e && typeof e.message === 'string' ? e.message : String(e);
  const nul = msg.indexOf('\u0000');
  if (nul > 0) return new PCPError(msg.slice(0, nul), msg.slice(nul + 1));
  return new PCPError('INVALID_ARGUMENT', msg);
}

function callNative(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

function abortError(signal) {
  const reason = signal && signal.reason;
  return new PCPError('CANCELLED', 'the operation was cancelled', reason === undefined ? undefined : { cause: reason });
}

module.exports = { ERROR_CODES, PCPError, invalid, fromNative, callNative, abortError };
