import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebGuard } from './web-guard.js';

// htpasswd -nbBC 12 "" topsecret ($2y$, as exporter-toolkit's documentation makes them)
const HTPASSWD = '$2y$12$KTbZnVgxAIUmnu5W2bRGmuJ/in8A9sHLt2je2lxOriq8TJP0vMk1y';
const req = (auth?: string) => ({ headers: auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}, socket: {} }) as unknown as IncomingMessage;

describe('WebGuard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-guard-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("basic auth against htpasswd's bcrypt hashes; /healthz open; a rate limit answers 429 past its burst", async () => {
    const file = join(dir, 'web.yml');
    writeFileSync(file, `basic_auth_users:\n  alice: ${HTPASSWD}\nrate_limit:\n  interval: 1m\n  burst: 5\n`);
    const g = new WebGuard(file, () => {});
    expect(g.tls).toBeNull();
    expect(await g.check(req('alice:topsecret'), '/metrics')).toBeNull();
    // the second time comes from the cache of verified credentials
    expect(await g.check(req('alice:topsecret'), '/metrics')).toBeNull();
    expect((await g.check(req('alice:wrong'), '/metrics'))?.status).toBe(401);
    expect((await g.check(req('mallory:topsecret'), '/metrics'))?.status).toBe(401);
    expect(await g.check(req(), '/healthz')).toBeNull();
    expect((await g.check(req('alice:topsecret'), '/metrics'))?.status).toBe(429);
  });
});
