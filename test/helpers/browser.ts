/**
 * A page opened in a real browser (Debian's chromium-headless-shell): its
 * DOM, a screenshot, and every request it made. The page is served from
 * 127.0.0.1 by this process, which is also the browser's only proxy and
 * the only name it can resolve: a request for anything else lands here and
 * is recorded (and answered 404) instead of leaving the machine.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';

export const CHROMIUM = 'chromium-headless-shell';

export interface Rendered {
  dom: string;
  png: PNG;
  /** what the page asked this server for besides itself (paths, absolute URLs, CONNECT targets) */
  requests: string[];
  /** every URL the browser's network stack started a job for, from its net log */
  netlog: string[];
}

/** Renders `html` at width × height; the page is served as /page.html. */
export async function render(html: string, width = 1200, height = 1400): Promise<Rendered> {
  const requests: string[] = [];
  let origin = '';
  const server = createServer((req, res) => {
    // loopback goes through the proxy too (<-loopback>): the page comes as an absolute URL
    if (req.url === '/page.html' || req.url === `${origin}/page.html`) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      return;
    }
    const url = req.url ?? '?';
    requests.push(url.startsWith(`${origin}/`) ? url.slice(origin.length) : url);
    res.writeHead(404).end();
  });
  server.on('connect', (req, socket) => {
    requests.push(`CONNECT ${req.url}`);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-browser-'));
  try {
    const url = `${origin}/page.html`;
    const common = [
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      `--window-size=${width},${height}`,
      `--proxy-server=http://127.0.0.1:${port}`,
      '--proxy-bypass-list=<-loopback>',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ];
    const dom = await chromium([...common, `--log-net-log=${join(dir, 'dom.json')}`, '--dump-dom', url]);
    await chromium([...common, `--log-net-log=${join(dir, 'shot.json')}`, `--screenshot=${join(dir, 'shot.png')}`, url]);
    const netlog = [...netlogUrls(join(dir, 'dom.json')), ...netlogUrls(join(dir, 'shot.json'))];
    const png = PNG.sync.read(readFileSync(join(dir, 'shot.png')));
    return { dom, png, requests, netlog };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pixels within a small distance of a colour ("#rrggbb"). */
export function pixelsOf(png: PNG, colour: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (Math.abs(png.data[i] - r) + Math.abs(png.data[i + 1] - g) + Math.abs(png.data[i + 2] - b) < 30) n++;
  }
  return n;
}

function chromium(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${CHROMIUM} exited ${code}:\n${err}`));
    });
  });
}

/** The URLs of the requests in a Chromium net log (URL_REQUEST_START_JOB events). */
function netlogUrls(file: string): string[] {
  const log = JSON.parse(readFileSync(file, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: Array<{ type: number; params?: { url?: string } }> };
  const start = log.constants.logEventTypes.URL_REQUEST_START_JOB;
  return log.events.filter((e) => e.type === start && e.params?.url).map((e) => e.params!.url!);
}
