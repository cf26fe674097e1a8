/**
 * What a scraper sees: /metrics from a prom-client registry and /healthz,
 * nothing else; behind a WebGuard (TLS, client certificates, basic auth)
 * when serve has --web-config.
 */
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { WebGuard } from './web-guard.js';

/** First byte of a TLS record carrying a handshake: anything else on a TLS port is someone speaking plain HTTP. */
const TLS_HANDSHAKE = 0x16;
const FIRST_BYTE_MS = 10_000;

export interface MetricsServer {
  /** http://… or https://… */
  scheme: 'http' | 'https';
  close(): void;
}

/** Listens on host:port; rejects with the listen error (address in use, not ours). */
export async function serveMetrics(registry: Registry, healthy: () => boolean, host: string, port: number, guard: WebGuard | null = null): Promise<MetricsServer> {
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    for (const [k, v] of Object.entries(guard?.headers ?? {})) res.setHeader(k, v);
    const refused = guard ? await guard.check(req, path) : null;
    if (refused) {
      res.writeHead(refused.status, { 'content-type': 'text/plain; charset=utf-8', ...refused.headers }).end(refused.body);
      return;
    }
    if (path === '/metrics') {
      try {
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    } else if (path === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'detached\n');
    } else {
      res.writeHead(404).end('droptrace: /metrics or /healthz\n');
    }
  };
  const handler: RequestListener = (req, res) => {
    answer(req, res).catch((err) => res.writeHead(500).end(String(err)));
  };
  const tls = guard?.tls ?? null;
  let server: Server;
  if (tls) {
    const https = createHttpsServer(tls, handler);
    if (guard) guard.onTls = (o) => https.setSecureContext(o);
    // one port, as exporter-toolkit: a TLS handshake goes to the HTTPS server, plain HTTP gets
    // a 400 that says why (and never a metric)
    server = createNetServer({ pauseOnConnect: true }, (socket: Socket) => {
      // a client that connects and says nothing is not held open here: the HTTPS server's own
      // timeouts only start once it has the socket
      socket.setTimeout(FIRST_BYTE_MS, () => socket.destroy());
      socket.once('data', (chunk: Buffer) => {
        socket.setTimeout(0);
        socket.pause();
        socket.unshift(chunk);
        if (chunk[0] === TLS_HANDSHAKE) https.emit('connection', socket);
        else socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n');
      });
      socket.on('error', () => socket.destroy());
      socket.resume();
    });
  } else {
    server = createHttpServer(handler);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { scheme: tls ? 'https' : 'http', close: () => server.close() };
}
