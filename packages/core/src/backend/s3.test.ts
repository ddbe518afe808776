import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { S3Backend } from './s3.js';

// A stand-in S3 endpoint on loopback that never answers the first request and answers
// the rest: the real SDK talks to it over real HTTP.
let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function silentOnce(body: Buffer): Promise<{ endpoint: string; seen: () => number }> {
  let n = 0;
  server = createServer((req, res) => {
    n++;
    if (n === 1) return; // stalls: no status line, no bytes, connection kept open
    req.resume();
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream', etag: '"x"' });
    res.end(body);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { endpoint: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen: () => n };
}

describe('S3Backend request timeout', () => {
  it('gives up on a request that makes no progress for requestTimeout ms, and retries it', async () => {
    const body = Buffer.from('pack bytes');
    const { endpoint, seen } = await silentOnce(body);
    const s3 = new S3Backend({ bucket: 'b', prefix: 'p/', endpoint, accessKeyId: 'k', secretAccessKey: 's', requestTimeout: 300 });
    try {
      const started = Date.now();
      expect(Buffer.from(await s3.load('packs/ab/cd'))).toEqual(body);
      expect(seen()).toBe(2);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await s3.close();
    }
  });
});
