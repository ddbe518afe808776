// Builds every package (tsc -b) and regenerates the oclif manifest so new commands
// are never hidden by a stale one. Plain JS: Node 20 cannot run .ts directly.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'packages/cli/package.json'));
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
const cliDir = join(root, 'packages/cli');
rmSync(join(cliDir, 'oclif.manifest.json'), { force: true });
execFileSync(process.execPath, [tsc, '-b', 'packages/core', 'packages/cli'], { cwd: root, stdio: 'inherit' });

const { Plugin } = await import(require.resolve('@oclif/core'));
const plugin = new Plugin({ root: cliDir, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
const manifest = await plugin._manifest();
writeFileSync(join(cliDir, 'oclif.manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
console.error(`build: ${Object.keys(manifest.commands).length} commands`);
