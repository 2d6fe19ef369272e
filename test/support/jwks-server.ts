import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

type Respond = (req: IncomingMessage, res: ServerResponse, server: JwksServer) => void;

/**
 * A key set server on loopback whose behaviour a test sets: it serves `keys` by default, counts requests and the body bytes
 * it managed to write, and can hang, stall, redirect or answer too much (see `behaviours`).
 */
export class JwksServer {
  keys: JWK[] = [];
  requests = 0;
  bytesWritten = 0;
  respond: Respond = behaviours.keys;
  url = '';
  private server?: Server;
  /** Settles when the last response's connection has closed (by either side). */
  lastClosed: Promise<void> = Promise.resolve();

  async start(path = '/jwks.json'): Promise<this> {
    this.server = createServer((req, res) => {
      this.requests++;
      this.lastClosed = new Promise((r) => res.on('close', () => r()));
      this.respond(req, res, this);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

export const behaviours = {
  keys: ((_req, res, s) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: s.keys }));
  }) as Respond,
  /** Accepts the request and never answers. */
  hang: (() => undefined) as Respond,
  /** Serves the keys after `ms`. */
  slow:
    (ms: number): Respond =>
    (req, res, s) => {
      const t = setTimeout(() => behaviours.keys(req, res, s), ms);
      res.on('close', () => clearTimeout(t));
    },
  /** Sends the headers and the first bytes of a key set, then nothing more. */
  stall: ((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"keys":[');
  }) as Respond,
  /** Declares a Content-Length of `bytes` and sends none of them. */
  declared:
    (bytes: number): Respond =>
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(bytes) });
      res.flushHeaders();
    },
  body:
    (status: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Respond =>
    (_req, res) => {
      res.writeHead(status, headers);
      res.end(body);
    },
  redirect:
    (to: string): Respond =>
    (_req, res) => {
      res.writeHead(302, { location: to });
      res.end();
    },
  /** Streams `total` bytes of a JSON string in 64 KiB chunks (chunked, or with its Content-Length declared), as fast as the reader takes them. */
  huge:
    (total: number, declareLength: boolean): Respond =>
    (_req, res, s) => {
      res.writeHead(200, { 'content-type': 'application/json', ...(declareLength ? { 'content-length': String(total) } : {}) });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let left = total;
      const pump = () => {
        while (left > 0 && !res.destroyed) {
          const n = Math.min(left, chunk.length);
          left -= n;
          s.bytesWritten += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        if (left === 0) res.end();
      };
      pump();
    },
};
