'use strict';
// Finds and loads the native addon of pcp-rs, napi-rs style:
//
//   1. $PCP_RS_NATIVE_PATH, if set (a .node file; for debugging a build);
//   2. pcp-rs.node in this package, compiled from source by install.js;
//   3. the prebuilt package for this platform, `pcp-rs-<platform>`
//      (an optional dependency of pcp-rs, e.g. pcp-rs-linux-x64-gnu).
//
// install.js uses `prebuiltPackage()` and `platformTag()` to decide
// whether it must compile from source.

const path = require('node:path');

const BINARY_NAME = 'pcp-rs';

/** Whether this Linux process runs on musl rather than glibc. */
function isMusl() {
  if (process.platform !== 'linux') return false;
  // Node's diagnostic report names the glibc it runs on; musl builds have none.
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
  const header = report && (typeof report === 'string' ? JSON.parse(report).header : report.header);
  return !(header && header.glibcVersionRuntime);
}

/**
 * napi-rs's name for this platform (`linux-x64-gnu`, `win32-x64-msvc`,
 * `darwin-arm64`, ...), which names the prebuilt package and its file.
 */
function platformTag() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') {
    // A Node for Windows is built with MSVC; a mingw-built addon loads in it
    // just as well (napi-rs resolves the N-API symbols at run time), so both
    // are candidates, MSVC first.
    return `win32-${arch}-msvc`;
  }
  return `${platform}-${arch}`;
}

/** The prebuilt packages that may serve this platform, best first. */
function prebuiltCandidates() {
  const tag = platformTag();
  const tags = [tag];
  if (tag.startsWith('win32-') && tag.endsWith('-msvc')) tags.push(tag.replace(/-msvc$/, '-gnu'));
  return tags.map((t) => `${BINARY_NAME}-${t}`);
}

/** The installed prebuilt package's name and resolved path, or null. */
function prebuiltPackage() {
  for (const name of prebuiltCandidates()) {
    try {
      return { name, path: require.resolve(name, { paths: [__dirname] }) };
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  return null;
}

/** Loads the addon, or throws an Error that lists what was tried and why each failed. */
function loadNative() {
  const tried = [];
  const attempt = (what, file) => {
    try {
      return require(file);
    } catch (e) {
      tried.push(`${what}: ${e.message.split('\n')[0]}`);
      return null;
    }
  };
  if (process.env.PCP_RS_NATIVE_PATH) {
    const m = attempt('PCP_RS_NATIVE_PATH', path.resolve(process.env.PCP_RS_NATIVE_PATH));
    if (m) return m;
  }
  const local = attempt('built from source', path.join(__dirname, `${BINARY_NAME}.node`));
  if (local) return local;
  for (const name of prebuiltCandidates()) {
    const m = attempt(`prebuilt ${name}`, name);
    if (m) return m;
  }
  throw new Error(
    `pcp-rs: no native addon loads on ${platformTag()} (${tried.join('; ')}). ` +
      `Install the prebuilt package for this platform (${prebuiltCandidates().join(' or ')}) if there is one, ` +
      'or build the addon from source: it needs a Rust toolchain (cargo on PATH) and the package\'s install ' +
      'script (`npm rebuild pcp-rs`; if npm skipped the script, first `npm install-scripts approve pcp-rs`).',
  );
}

module.exports = { loadNative, platformTag, prebuiltPackage, BINARY_NAME };
