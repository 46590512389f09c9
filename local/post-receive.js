// The example repositories' post-receive hook (written by local/webhooks.ts): runs local/push-hook.ts.
require('tsx/cjs');
require('./push-hook.ts')
  .main(process.argv[2])
  .catch((err) => {
    // A push has happened whatever the hook says: report, never fail it.
    console.log(`stepdeploy: the push hook failed: ${err.message}`);
  });
