// The example repositories' post-receive hook (written by local/webhooks.ts): runs local/push-hook.ts,
// through tsx in the repository, as built JavaScript in the package (as cli/bin.js does).
const { existsSync } = require('node:fs');
const { join } = require('node:path');

if (!existsSync(join(__dirname, 'push-hook.js'))) require('tsx/cjs');
require('./push-hook')
  .main(process.argv[2])
  .catch((err) => {
    // A push has happened whatever the hook says: report, never fail it.
    console.log(`stepdeploy: the push hook failed: ${err.message}`);
  });
