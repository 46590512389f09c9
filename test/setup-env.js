// Tests never call real AWS: fixed fake region and credentials, so a client that escapes a mock
// fails fast instead of searching for credentials.
process.env.AWS_REGION = process.env.AWS_REGION || 'eu-west-1';
process.env.AWS_ACCESS_KEY_ID = process.env.AWS_ACCESS_KEY_ID || 'test';
process.env.AWS_SECRET_ACCESS_KEY = process.env.AWS_SECRET_ACCESS_KEY || 'test';
// The pinned AWS SDK warns on Node 20 on every client; it says nothing about our code.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
