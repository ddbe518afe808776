// A small fault-injecting HTTP proxy for S3 tests. It listens on 127.0.0.1, forwards
// every request unchanged (Host header included, so SigV4 signatures stay valid) to
// one upstream endpoint, and on a seeded share of the requests injects a fault:
//
//   reset       the connection is destroyed before the request reaches the server
//   lostReply   the server acts on the request, then the connection is destroyed
//               before its answer reaches the client (a retried PUT or
//               CompleteMultipartUpload then meets its own result)
//   error500    500 InternalError with an S3 XML error body; the server is not asked
//   slowDown    503 SlowDown (S3's throttling answer); the server is not asked
//   truncate    the server's answer with its full Content-Length but only part of
//               the body, then the connection is destroyed
//   stall       the request is held for `stallMs` before it is forwarded (longer
//               than the client's request timeout, if the test sets a short one, so
//               that the client gives up and retries)
//
//   const proxy = await startFaultProxy({ upstream: s3.endpoint, seed: 7, rate: 0.1 });
//   … cpv remote modify origin endpoint proxy.url …
//   proxy.rate = 0;                      // faults off
//   console.log(proxy.summary());        // "412 requests, 41 faults: reset 7, …"
//   await proxy.close();
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { splitmix32 } from './model.js';

export const FAULT_KINDS = ['reset', 'lostReply', 'error500', 'slowDown', 'truncate', 'stall'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What the proxy saw of one request, for targeted faults. */
export interface ProxiedRequest {
  method: string;
  /** Path and query string, as sent. */
  url: string;
}

export interface FaultProxyOptions {
  /** The S3 endpoint to forward to, e.g. `http://127.0.0.1:18081`. */
  upstream: string;
  /** Seed of the generator that decides which requests fail and how. */
  seed: number;
  /** Share of requests that get a fault, 0 to 1 (changeable later through `rate`). */
  rate: number;
  /** Kinds to draw from (default: all). */
  kinds?: readonly FaultKind[];
  /** How long a stalled request is held (default 3000 ms). */
  stallMs?: number;
  /**
   * Decide a request's fault before the seeded draw: return a kind to inject it,
   * `null` to pass the request through untouched, undefined to let the draw decide.
   */
  target?: (req: ProxiedRequest) => FaultKind | null | undefined;
}

export interface FaultProxy {
  /** The endpoint clients use instead of the upstream: `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Share of requests that get a fault; set to 0 to pass everything through. */
  rate: number;
  /** Requests received since start (or the last `reset()`). */
  readonly requests: number;
  /** Faults injected, by kind. */
  readonly counts: Readonly<Record<FaultKind, number>>;
  /** Total faults injected. */
  readonly faults: number;
  /** Stalled requests whose client gave up (timed out) before the stall ended. */
  readonly abandoned: number;
  /** Zero the counters. */
  resetCounts(): void;
  /** One line for the test output: requests, faults, and faults by kind. */
  summary(): string;
  /** Stop listening and end every open connection. */
  close(): Promise<void>;
}

const XML_ERROR = (code: string, message: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>cpv-fault-proxy</RequestId></Error>`;

/** Start a proxy in front of `opts.upstream`; resolves once it listens. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const up = new URL(opts.upstream);
  if (up.protocol !== 'http:') throw new Error(`fault proxy: only http:// upstreams are supported, got ${opts.upstream}`);
  const kinds = opts.kinds ?? FAULT_KINDS;
  const stallMs = opts.stallMs ?? 3000;
  const next = splitmix32(opts.seed);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;
  let abandoned = 0;
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;

  const state = { rate: opts.rate };
  const draw = (req: IncomingMessage): FaultKind | undefined => {
    // Two draws per request, always, so one request's fate does not shift the next's.
    const roll = next() / 2 ** 32;
    const pick = kinds[next() % kinds.length]!;
    const targeted = opts.target?.({ method: req.method ?? 'GET', url: req.url ?? '/' });
    if (targeted !== undefined) return targeted ?? undefined;
    return roll < state.rate ? pick : undefined;
  };

  /** Forward `req` upstream; resolves with the upstream response (body not yet read). */
  const forward = (req: IncomingMessage): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const out = httpRequest(
        { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers, agent },
        resolve,
      );
      out.on('error', reject);
      req.pipe(out);
    });

  /** Read a whole body. */
  const drain = (res: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve(Buffer.concat(parts)));
      res.on('error', reject);
    });

  const sendError = (res: ServerResponse, status: number, code: string, message: string): void => {
    const body = XML_ERROR(code, message);
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-amz-request-id': 'cpv-fault-proxy' });
    res.end(body);
  };

  const pass = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const upRes = await forward(req);
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.rawHeaders);
    upRes.pipe(res);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++;
    const fault = draw(req);
    if (fault) counts[fault]++;
    switch (fault) {
      case undefined:
        return pass(req, res);
      case 'error500':
      case 'slowDown':
        // Read the request body first, as a server would, so the client sees an answer
        // and not a broken upload.
        await drain(req);
        return fault === 'error500'
          ? sendError(res, 500, 'InternalError', 'We encountered an internal error. Please try again.')
          : sendError(res, 503, 'SlowDown', 'Please reduce your request rate.');
      case 'reset':
        req.socket.destroy();
        return;
      case 'lostReply': {
        const upRes = await forward(req);
        await drain(upRes);
        req.socket.destroy();
        return;
      }
      case 'truncate': {
        const upRes = await forward(req);
        const body = await drain(upRes);
        if (body.length < 2) {
          // Nothing to cut (a PUT's or HEAD's answer): the connection drops instead.
          req.socket.destroy();
          return;
        }
        const headers = { ...upRes.headers, 'content-length': String(body.length) };
        delete headers['transfer-encoding'];
        res.writeHead(upRes.statusCode ?? 200, headers);
        res.write(body.subarray(0, Math.max(1, Math.floor(body.length * (0.1 + 0.8 * (next() / 2 ** 32))))));
        // Let the partial body leave before the connection is cut.
        await new Promise<void>((r) => setTimeout(r, 20));
        req.socket.destroy();
        return;
      }
      case 'stall': {
        // Hold the request; a client that gives up meanwhile (its timeout) closes the
        // connection and retries on a new one.
        const gaveUp = await new Promise<boolean>((resolve) => {
          const onClose = (): void => {
            clearTimeout(t);
            timers.delete(t);
            resolve(true);
          };
          const t = setTimeout(() => {
            timers.delete(t);
            req.socket.off('close', onClose);
            resolve(false);
          }, stallMs);
          timers.add(t);
          req.socket.once('close', onClose);
        });
        if (gaveUp) {
          abandoned++;
          return;
        }
        return pass(req, res);
      }
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      // An upstream failure (or a client that went away): the client sees a dropped connection.
      req.socket.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get rate() {
      return state.rate;
    },
    set rate(r: number) {
      state.rate = r;
    },
    get requests() {
      return requests;
    },
    counts,
    get faults() {
      return FAULT_KINDS.reduce((n, k) => n + counts[k], 0);
    },
    get abandoned() {
      return abandoned;
    },
    resetCounts() {
      requests = 0;
      abandoned = 0;
      for (const k of FAULT_KINDS) counts[k] = 0;
    },
    summary() {
      const total = FAULT_KINDS.reduce((n, k) => n + counts[k], 0);
      return `${requests} requests, ${total} faults: ${FAULT_KINDS.map((k) => `${k} ${counts[k]}`).join(', ')} (${abandoned} stalls timed out by the client)`;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
