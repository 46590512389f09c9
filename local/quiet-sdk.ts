/**
 * The pinned AWS SDK warns on Node 20 at every client (NodeVersionSupportWarning); it says
 * nothing about stepdeploy, so entry points load this first to turn that one warning off.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export {};
