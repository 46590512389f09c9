#!/usr/bin/env node
// The `stepdeploy` command. Built (dist/cli/ of the package) main.js is JavaScript; in the repository
// main.ts runs through tsx (a devDependency), so there is no build step while developing.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
if (!existsSync(join(__dirname, 'main.js'))) require('tsx/cjs');
require('./main').main();
