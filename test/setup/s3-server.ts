// Vitest global setup: an S3-compatible server for the tests that need one.
//
// - CPV_TEST_S3_ENDPOINT set: use that server (with CPV_TEST_S3_ACCESS_KEY,
//   CPV_TEST_S3_SECRET_KEY and optionally CPV_TEST_S3_REGION); nothing is started.
// - CPV_TEST_S3=skip: no S3 server; S3 tests skip.
// - otherwise (CPV_TEST_S3 unset or `ceph`, or `swift`): install and start the local test
//   server with test/servers/<ceph|swift>.sh and stop it again at teardown. A server that
//   was already running is used but left running. When it cannot be installed or started,
//   one loud line says so and the S3 tests skip, unless CPV_TEST_S3_REQUIRED=1, which makes
//   that an error.
//
// Tests read the server with `s3Config()` from ./s3-env.ts (vitest `inject('s3')`); child
// processes get it through the CPV_TEST_S3_* environment variables.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

/** Where the S3 tests find their server. */
export interface S3TestConfig {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** `ceph` or `swift` when started by this setup (or found running), else `external`. */
  server: 'ceph' | 'swift' | 'external';
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The S3 server for the tests, or null when S3 tests are to be skipped. */
    s3: S3TestConfig | null;
  }
}

type LocalServer = 'ceph' | 'swift';

const LOCAL: Record<LocalServer, { portVar: string; defaultPort: number; accessKeyId: string; secretAccessKey: string }> = {
  ceph: { portVar: 'CPV_CEPH_PORT', defaultPort: 18081, accessKeyId: 'cpvtest', secretAccessKey: 'cpvtestsecret' },
  swift: { portVar: 'CPV_SWIFT_PORT', defaultPort: 18080, accessKeyId: 'test:tester', secretAccessKey: 'testing' },
};

const ENV_KEYS = ['CPV_TEST_S3_ENDPOINT', 'CPV_TEST_S3_ACCESS_KEY', 'CPV_TEST_S3_SECRET_KEY', 'CPV_TEST_S3_REGION'] as const;

// Every vitest project that lists this file runs its own setup and teardown, each in a
// fresh module instance; the state lives on globalThis so that one server serves them all
// and the last teardown stops it.
interface SharedState {
  users: number;
  ready: Promise<S3TestConfig | null>;
  /** The local server this setup started, to be stopped by the last teardown. */
  owned: LocalServer | null;
  savedEnv: Partial<Record<(typeof ENV_KEYS)[number], string | undefined>>;
}
const STATE = Symbol.for('cpv.test.s3-server');
const shared = globalThis as typeof globalThis & { [STATE]?: SharedState };

function scriptPath(server: LocalServer): string {
  return fileURLToPath(new URL(`../servers/${server}.sh`, import.meta.url));
}

interface RunResult {
  code: number;
  output: string;
}

/** Runs a server script, echoing its lines to stderr, killing it after `timeoutMs`. */
function runScript(server: LocalServer, command: string, timeoutMs: number, echo = true): Promise<RunResult> {
  return new Promise((resolve) => {
    // Its own process group, so that a timeout also ends what it runs (the servers it
    // starts run in sessions of their own and are not touched).
    const child = spawn('bash', [scriptPath(server), command], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env, detached: true });
    let output = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      if (echo) process.stderr.write(text);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      output += `\n${server}.sh ${command} timed out after ${Math.round(timeoutMs / 1000)} s\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, output: `${output}${e.message}\n` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), output });
    });
  });
}

/** The last non-empty line of a script's output (which says why it failed), or `fallback`. */
function lastLine(output: string, fallback: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? fallback;
}

function skip(reason: string): null {
  if (process.env.CPV_TEST_S3_REQUIRED === '1') throw new Error(`S3 test server required (CPV_TEST_S3_REQUIRED=1) but unavailable: ${reason}`);
  process.stderr.write(`!!! S3 SUITE SKIPPED: ${reason} !!!\n`);
  return null;
}

async function startLocal(server: LocalServer, state: SharedState): Promise<S3TestConfig | null> {
  const spec = LOCAL[server];
  const port = Number(process.env[spec.portVar] || spec.defaultPort);
  const config: S3TestConfig = {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: spec.accessKeyId,
    secretAccessKey: spec.secretAccessKey,
    region: 'us-east-1',
    server,
  };
  if ((await runScript(server, 'status', 30_000, false)).code === 0) {
    process.stderr.write(`${server}: using the server already running at ${config.endpoint} (left running)\n`);
    return config;
  }
  const install = await runScript(server, 'install', 15 * 60_000);
  if (install.code !== 0) return skip(lastLine(install.output, `${server} install failed`));
  const start = await runScript(server, 'start', 5 * 60_000);
  // A failed start has stopped what it launched and keeps its logs for a look.
  if (start.code !== 0) return skip(lastLine(start.output, `${server} start failed`));
  state.owned = server;
  return config;
}

async function resolveServer(state: SharedState): Promise<S3TestConfig | null> {
  const endpoint = process.env.CPV_TEST_S3_ENDPOINT;
  if (endpoint) {
    const accessKeyId = process.env.CPV_TEST_S3_ACCESS_KEY;
    const secretAccessKey = process.env.CPV_TEST_S3_SECRET_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new Error('CPV_TEST_S3_ENDPOINT is set, so CPV_TEST_S3_ACCESS_KEY and CPV_TEST_S3_SECRET_KEY must be set too');
    }
    return { endpoint, accessKeyId, secretAccessKey, region: process.env.CPV_TEST_S3_REGION || 'us-east-1', server: 'external' };
  }
  const choice = (process.env.CPV_TEST_S3 || 'ceph').toLowerCase();
  if (choice === 'skip') return skip('CPV_TEST_S3=skip');
  if (choice !== 'ceph' && choice !== 'swift') {
    throw new Error(`CPV_TEST_S3 must be ceph, swift or skip (got ${JSON.stringify(process.env.CPV_TEST_S3)})`);
  }
  return startLocal(choice, state);
}

export async function setup(project: TestProject): Promise<void> {
  let state = shared[STATE];
  if (!state) {
    const fresh: SharedState = { users: 0, ready: Promise.resolve(null), owned: null, savedEnv: {} };
    fresh.ready = resolveServer(fresh).then((config) => {
      if (config) {
        for (const key of ENV_KEYS) fresh.savedEnv[key] = process.env[key];
        process.env.CPV_TEST_S3_ENDPOINT = config.endpoint;
        process.env.CPV_TEST_S3_ACCESS_KEY = config.accessKeyId;
        process.env.CPV_TEST_S3_SECRET_KEY = config.secretAccessKey;
        process.env.CPV_TEST_S3_REGION = config.region;
      }
      return config;
    });
    state = shared[STATE] = fresh;
  }
  state.users++;
  project.provide('s3', await state.ready);
}

export async function teardown(): Promise<void> {
  const state = shared[STATE];
  if (!state || --state.users > 0) return;
  delete shared[STATE];
  await state.ready.catch(() => null);
  for (const [key, value] of Object.entries(state.savedEnv)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  if (state.owned) {
    const stop = await runScript(state.owned, 'stop', 2 * 60_000);
    if (stop.code !== 0) process.stderr.write(`${lastLine(stop.output, `${state.owned}.sh stop failed`)}\n`);
  }
}
