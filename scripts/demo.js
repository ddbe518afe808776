// The end-to-end demo of cpv's main job on the embedded default (a directory remote):
// version a model and a dataset in git, push, clone elsewhere, pull and verify, then
// change 5% of the model and show how little the second push moves.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBLAKE3 } from 'hash-wasm';
import { rewriteTensors, writeDataset, writeModel } from './lib/synth.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cpvBin = join(root, 'packages/cli/bin/run.js');
const MODEL_BYTES = Number(process.env.DEMO_MODEL_MIB ?? 256) * 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'cpv-demo-'));
const env = { ...process.env, HOME: work, XDG_CONFIG_HOME: join(work, '.config'), GIT_AUTHOR_NAME: 'demo', GIT_AUTHOR_EMAIL: 'demo@example.com', GIT_COMMITTER_NAME: 'demo', GIT_COMMITTER_EMAIL: 'demo@example.com' };

const mib = (n) => `${(n / 1024 / 1024).toFixed(2)} MiB`;
const step = (s) => console.log(`\n== ${s}`);
function sh(cwd, cmd, args, { quiet = false } = {}) {
  if (!quiet) console.log(`$ ${[cmd === process.execPath ? 'cpv' : cmd, ...(cmd === process.execPath ? args.slice(1) : args)].join(' ')}`);
  const out = execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (!quiet && out.trim()) console.log(out.trimEnd().replace(/^/gm, '  '));
  return out;
}
const cpv = (cwd, ...args) => sh(cwd, process.execPath, [cpvBin, ...args]);
const cpvJson = (cwd, ...args) => JSON.parse(sh(cwd, process.execPath, [cpvBin, ...args, '--json'], { quiet: true }));
const git = (cwd, ...args) => sh(cwd, 'git', args, { quiet: true });

async function b3(path) {
  const h = await createBLAKE3();
  h.init();
  h.update(readFileSync(path));
  return h.digest('hex');
}
function dirBytes(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath ?? e.path, e.name)).size;
  return n;
}
function treeDigest(dir) {
  const h = createHash('sha256');
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name)).sort()) {
    h.update(e.slice(dir.length)).update(readFileSync(e));
  }
  return h.digest('hex');
}
function check(cond, what) {
  if (!cond) {
    console.error(`\nDEMO FAILED: ${what}\n(work directory kept at ${work})`);
    process.exit(1);
  }
  console.log(`  ok: ${what}`);
}

try {
  step('A team repository: a bare git origin (standing in for Bitbucket) and a directory remote for data');
  const origin = join(work, 'origin.git');
  const remote = join(work, 'cpv-remote');
  git(work, 'init', '-q', '--bare', '-b', 'main', origin);
  git(work, 'clone', '-q', origin, 'alice');
  const alice = join(work, 'alice');
  cpv(alice, 'init', '--remote', remote);

  step(`Alice trains a model (${mib(MODEL_BYTES)} safetensors) on a dataset (2,000 small files)`);
  writeModel(join(alice, 'model.safetensors'), { bytes: MODEL_BYTES, tensors: 200, seed: 7 });
  const dataBytes = writeDataset(join(alice, 'data'), { files: 2000, seed: 11 });
  console.log(`  generated model.safetensors and data/ (${mib(dataBytes)})`);
  cpv(alice, 'add', 'model.safetensors', '--kind', 'model', '--meta', 'framework=pytorch');
  cpv(alice, 'add', 'data', '--kind', 'data');
  git(alice, 'add', '-A');
  git(alice, 'commit', '-qm', 'model v1 trained on data v1');
  git(alice, 'tag', 'v1');
  cpv(alice, 'push');
  git(alice, 'push', '-q', 'origin', 'main', '--tags');
  const afterV1 = dirBytes(remote);
  console.log(`  remote holds ${mib(afterV1)}`);

  step('Bob clones the repository and pulls: every byte is verified');
  git(work, 'clone', '-q', origin, 'bob');
  const bob = join(work, 'bob');
  cpv(bob, 'pull');
  const pointer = readFileSync(join(bob, 'model.safetensors.cpv'), 'utf8');
  const oid = /oid: b3:([0-9a-f]{64})/.exec(pointer)[1];
  check((await b3(join(bob, 'model.safetensors'))) === oid, "Bob's model.safetensors has the BLAKE3 (b3sum) recorded in the pointer");
  check((await b3(join(bob, 'model.safetensors'))) === (await b3(join(alice, 'model.safetensors'))), "Bob's model is byte-identical to Alice's");
  check(treeDigest(join(bob, 'data')) === treeDigest(join(alice, 'data')), "Bob's data/ is identical to Alice's (2,000 files)");

  step('Alice fine-tunes: 5% of the tensors change');
  const changed = rewriteTensors(join(alice, 'model.safetensors'), { fraction: 0.05, seed: 99 });
  console.log(`  rewrote ${mib(changed)} of ${mib(MODEL_BYTES)} in place`);
  cpv(alice, 'status');
  cpv(alice, 'add', 'model.safetensors');
  git(alice, 'commit', '-qam', 'model v2');
  git(alice, 'tag', 'v2');
  const push2 = cpvJson(alice, 'push');
  git(alice, 'push', '-q', 'origin', 'main', '--tags');
  const grew = dirBytes(remote) - afterV1;
  console.log(`  second push uploaded ${mib(push2.bytes)} of chunk data (${mib(push2.wireBytes)} on the wire); the remote grew by ${mib(grew)}`);
  console.log(`  a whole-file tool would upload ${mib(MODEL_BYTES)}: cpv moved ${((grew / MODEL_BYTES) * 100).toFixed(1)}% of that`);
  check(grew <= changed * 1.15, `remote growth ${mib(grew)} <= 1.15 x the ${mib(changed)} actually changed (ratio ${(grew / changed).toFixed(3)})`);

  step('Bob moves to v2, then back to v1: only missing chunks are downloaded');
  git(bob, 'pull', '-q', 'origin', 'main', '--tags');
  const pull2 = cpvJson(bob, 'pull');
  console.log(`  downloaded ${mib(pull2.fetch.bytes)}, reused ${mib(pull2.fetch.reusedBytes)} from the local cache`);
  check((await b3(join(bob, 'model.safetensors'))) === (await b3(join(alice, 'model.safetensors'))), "Bob's model is byte-identical to Alice's v2");
  git(bob, 'checkout', '-q', 'v1');
  cpv(bob, 'checkout');
  check((await b3(join(bob, 'model.safetensors'))) === oid, 'git checkout v1 && cpv checkout restores model v1 exactly');
  cpv(bob, 'diff', 'v1', 'v2');

  rmSync(work, { recursive: true, force: true });
  console.log('\nDemo passed.');
} catch (err) {
  console.error(`\nDEMO FAILED: ${err.message}\n(work directory kept at ${work})`);
  process.exit(1);
}
