#!/usr/bin/env node
// The AWS SDK warns on every run under Node 20 that future releases will need Node 22;
// cpv pins the SDK version, so the warning is noise for cpv users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// One bundled module holds @oclif/core and every command (scripts/build.js): loading
// it costs a fraction of loading their hundreds of modules one by one.
const { execute } = await import('../dist/bundle/index.js');
await execute({ dir: import.meta.url });
