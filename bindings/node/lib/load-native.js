'use strict';
// The addon: built from source, or the prebuilt package for this platform
// (../loader.js, the packaging's; kept apart from the API).

module.exports = require('../loader.js').loadNative();
