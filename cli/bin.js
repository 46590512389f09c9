#!/usr/bin/env node
// The `stepdeploy` command: runs the TypeScript CLI through tsx, so there is no build step.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require('tsx/cjs');
require('./main.ts').main();
