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

/** A value of the wrong JavaScript type: a `TypeError` (as in Python), with the same `code`. */
function typeError(message) {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' });
}

// Native functions throw "CODE\0message" for errors they report synchronously.
// A server's refusal adds "\0seconds": its retryAfter (RFC 6887 section 8.3).
function fromNative(e) {
  if (e instanceof PCPError || e instanceof TypeError) return e;
  // napi-rs could not convert a value to the Rust type ('NumberExpected', ...).
  if (e && typeof e.code === 'string' && e.code.endsWith('Expected')) return typeError(e.message);
  const msg = e && typeof e.message === 'string' ? e.message : String(e);
  const parts = msg.split('\u0000');
  if (parts.length >= 2 && parts[0]) {
    return withRetryAfter(new PCPError(parts[0], parts[1]), parts.length > 2 ? Number(parts[2]) : undefined);
  }
  return new PCPError('INVALID_ARGUMENT', msg);
}

/** `err.retryAfter`: for a server's refusal, the seconds it said it will keep refusing. */
function withRetryAfter(err, retryAfter) {
  if (retryAfter !== undefined) err.retryAfter = retryAfter;
  return err;
}

/** The error a native message carries. */
function errorOf(msg) {
  return withRetryAfter(new PCPError(msg.code, msg.message), msg.retryAfter);
}

function callNative(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Makes the methods and getters of the native class `cls` throw the package's errors. */
function convertErrors(cls) {
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(cls.prototype))) {
    if (key === 'constructor') continue;
    for (const part of ['value', 'get']) {
      const fn = d[part];
      if (typeof fn === 'function') d[part] = function converted(...args) { return callNative(() => fn.apply(this, args)); };
    }
    Object.defineProperty(cls.prototype, key, d);
  }
  return cls;
}

function abortError(signal) {
  const reason = signal && signal.reason;
  return new PCPError('CANCELLED', 'the operation was cancelled', reason === undefined ? undefined : { cause: reason });
}

module.exports = {
  ERROR_CODES, PCPError, invalid, typeError, fromNative, callNative, convertErrors, abortError, errorOf,
};
