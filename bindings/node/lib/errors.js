'use strict';
// Errors: `PCPError` with the core's stable `code`.

const native = require('./load-native');

/** Every stable `err.code` the package uses, from the core. */
const ERROR_CODES = Object.freeze(native.errorCodes());

const SHORT_TERM = new Set(native.shortTermCodes());

/**
 * An error from pcp-rs: `code` is one of `ERROR_CODES`; `shortTerm`: a
 * short-term refusal (RFC 6887 section 7.4), which may succeed later.
 */
class PCPError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = code === 'CANCELLED' ? 'AbortError' : 'PCPError';
    this.code = code;
    this.shortTerm = SHORT_TERM.has(code);
  }
}

function invalid(message) {
  return new PCPError('INVALID_ARGUMENT', message);
}

/** A value of the wrong JavaScript type: a `TypeError` (as in Python), with the same `code`. */
function typeError(message) {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' });
}

// What napi-rs says of a value it could not convert ("Failed to convert napi
// value String into rust type `f64` on ServerOptions.minLifetime"; for a
// boolean it names no JavaScript type), in JavaScript's words: the option,
// or else an argument (of `call`, when the caller names it). For an item of a list option napi-rs names
// the list (args.js has checked that it is an array).
// A Rust type as JavaScript calls its values.
const jsType = (rust) => ({ String: 'a string', bool: 'a boolean' })[rust] || (/^[iuf]\d+$/.test(rust) ? 'a number' : rust);

function conversionMessage(message, call) {
  const argument = `an argument${call ? ` of ${call}()` : ''}`;
  // An argument that takes one of several types ("Value is none of these types `String`, `f64`, ").
  const either = /^Value is none of these types (.*)$/.exec(message);
  if (either) return `${argument} must be ${[...either[1].matchAll(/`(\w+)`/g)].map(([, t]) => jsType(t)).join(' or ')}`;
  const m = /value (?:`?([A-Z]\w*)[^`]*?`? )?into rust type `(\w+)`(?: on (\w+)\.(\w+))?/.exec(message);
  if (!m) return message;
  const [, given, rust, struct, field] = m;
  const wanted = jsType(rust);
  let what = field ? `${struct === 'FilterData' ? 'filter ' : ''}${field}` : argument;
  if (field === 'candidates' || field === 'servers') what = `each of ${field}`;
  const g = given && given !== 'Unknown' ? given.toLowerCase() : undefined;
  const got = !g ? '' : `, got ${g === 'undefined' || g === 'null' ? g : `${/^[aeiou]/.test(g) ? 'an' : 'a'} ${g}`}`;
  return `${what} must be ${wanted}${got}`;
}

// Native functions throw "CODE\0message" for errors they report synchronously.
function fromNative(e, call) {
  if (e instanceof PCPError || e instanceof TypeError) return e;
  // napi-rs could not convert a value to the Rust type ('NumberExpected', ...).
  if (e && typeof e.code === 'string' && e.code.endsWith('Expected')) return typeError(conversionMessage(e.message, call));
  if (e && /^Value is none of these types/.test(e.message)) return typeError(conversionMessage(e.message, call));
  const [code, message] = String(e && typeof e.message === 'string' ? e.message : e).split('\u0000');
  return message === undefined ? invalid(code) : new PCPError(code, message);
}

/** The error a native message carries; `retryAfter`: for a server's refusal, the seconds it will keep refusing. */
function errorOf(msg) {
  const err = new PCPError(msg.code, msg.message);
  if (msg.retryAfter !== undefined) err.retryAfter = msg.retryAfter;
  return err;
}

function callNative(fn, call) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e, call);
  }
}

/** Makes the methods and getters of the native class `cls` throw the package's errors. */
function convertErrors(cls) {
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(cls.prototype))) {
    if (key === 'constructor') continue;
    for (const part of ['value', 'get']) {
      const fn = d[part];
      if (typeof fn === 'function') d[part] = function converted(...args) { return callNative(() => fn.apply(this, args), key); };
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
