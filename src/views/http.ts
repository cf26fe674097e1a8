/** What a scraper sees: /metrics from a prom-client registry and /healthz, nothing else. */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** Listens on host:port; rejects with the listen error (address in use, not ours). */
export async function serveMetrics(registry: Registry, healthy: () => boolean, host: string, port: number): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.url === '/metrics') {
      try {
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    } else if (req.url === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'detached\n');
    } else {
      res.writeHead(404).end('droptrace: /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
