/**
 * `serve --web-config` guarded as exporter-toolkit exporters are: over TLS,
 * 401 without or with wrong credentials, 200 with the right ones, plain HTTP
 * gets no metrics, a changed file is read again, client certificates are
 * asked for where the file says; and a real Prometheus scrapes it with
 * basic_auth and tls_config. Certificates are made here with openssl.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BIN, start } from './helpers/cli.js';
import { canRunKernelTests } from './helpers/kernel.js';
import { Lab, ourProgramsSettled } from './helpers/netns.js';
import { sleep } from './helpers/tmux.js';
import { certificates, httpsGet } from './helpers/tls.js';

const canRun = canRunKernelTests('the serve --web-config tests', ['openssl', 'prometheus']);
const port = () => 20000 + Math.floor(Math.random() * 20000);

/** What a plain-HTTP client gets from the port. */
function plain(p: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(p, '127.0.0.1', () => s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(out));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

describe.skipIf(!canRun)('droptrace serve --web-config', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-web-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    expect(await ourProgramsSettled()).toEqual([]);
  });
  if (canRun) certificates(dir);
  const ca = canRun ? readFileSync(join(dir, 'ca.crt'), 'utf8') : '';
  const password = 'correct horse battery staple';
  const hash = bcrypt.hashSync(password, 10);

  it('TLS and basic auth: 401 without or with wrong credentials, 200 with the right ones, no metrics over plain HTTP; a changed file is read again; a real Prometheus scrapes it', async () => {
    const ns = lab.netns('web');
    const web = join(dir, 'web-config.yml');
    // relative file names are read against the file's directory, as exporter-toolkit does
    writeFileSync(web, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  prometheus: ${hash}\n`);
    const mport = port();
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const t = start(['serve', '--listen', `127.0.0.1:${mport}`, '--netns', ns, '--web-config', web]);
    await t.ready();
    const url = `https://127.0.0.1:${mport}`;
    try {
      expect(t.stderr).toMatch(new RegExp(`serving metrics on https://127\\.0\\.0\\.1:${mport}/metrics with TLS, basic auth \\(1 user\\)`));
      lab.udp(ns, '127.0.0.1', 9, 7);
      expect(lab.snmp(ns, 'Udp', 'NoPorts') - before).toBe(7);

      const none = await httpsGet(`${url}/metrics`, { ca });
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Basic realm="droptrace"');
      expect(none.body).not.toMatch(/droptrace_/);
      expect((await httpsGet(`${url}/metrics`, { ca, user: 'prometheus', password: 'wrong' })).status).toBe(401);
      expect((await httpsGet(`${url}/metrics`, { ca, user: 'nobody', password })).status).toBe(401);
      let ok = await httpsGet(`${url}/metrics`, { ca, user: 'prometheus', password });
      for (let i = 0; i < 30 && !/droptrace_drops_total\{[^}]*\} 7$/m.test(ok.body); i++) {
        await sleep(100);
        ok = await httpsGet(`${url}/metrics`, { ca, user: 'prometheus', password });
      }
      expect(ok.status).toBe(200);
      expect(ok.headers['x-frame-options']).toBe('deny');
      expect(ok.body).toMatch(/^droptrace_drops_total\{reason="NO_SOCKET",[^}]*\} 7$/m);
      // a liveness probe has no credentials; it still needs TLS
      expect((await httpsGet(`${url}/healthz`, { ca })).status).toBe(200);
      const clear = await plain(mport);
      expect(clear).toMatch(/^HTTP\/1\.1 400 /);
      expect(clear).toMatch(/Client sent an HTTP request to an HTTPS server/);
      expect(clear).not.toMatch(/droptrace_/);

      // a real Prometheus: one job with the right credentials and the CA, one with a wrong password
      const pport = mport + 1;
      const cfg = join(dir, 'prometheus.yml');
      const job = (name: string, pw: string) =>
        `  - job_name: ${name}\n    scheme: https\n    basic_auth:\n      username: prometheus\n      password: '${pw}'\n    tls_config:\n      ca_file: ${join(dir, 'ca.crt')}\n    static_configs:\n      - targets: ['127.0.0.1:${mport}']\n`;
      writeFileSync(cfg, `global:\n  scrape_interval: 1s\nscrape_configs:\n${job('droptrace', password)}${job('wrongpw', 'guess')}`);
      const prom = spawn('prometheus', [`--config.file=${cfg}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${pport}`], { stdio: 'ignore' });
      children.push(prom);
      try {
        const query = async (q: string) => {
          try {
            const res = await fetch(`http://127.0.0.1:${pport}/api/v1/query?query=${encodeURIComponent(q)}`);
            return (await res.json()).data.result as Array<{ metric: Record<string, string>; value: [number, string] }>;
          } catch {
            return [];
          }
        };
        let drops = NaN;
        let up: Record<string, string> = {};
        for (let i = 0; i < 100 && (drops !== 7 || Object.keys(up).length < 2); i++) {
          await sleep(300);
          drops = Number((await query('sum(droptrace_drops_total{job="droptrace"})'))[0]?.value[1] ?? NaN);
          up = Object.fromEntries((await query('up')).map((r) => [r.metric.job, r.value[1]]));
        }
        expect(drops).toBe(7);
        expect(up).toEqual({ droptrace: '1', wrongpw: '0' });
        const targets = await (await fetch(`http://127.0.0.1:${pport}/api/v1/targets`)).json();
        const wrong = targets.data.activeTargets.find((x: { labels: { job: string } }) => x.labels.job === 'wrongpw');
        expect(wrong.lastError).toMatch(/401/);
      } finally {
        prom.kill('SIGTERM');
      }

      // the file changes (a rotated Secret): the new user works within a second or two, the old one no longer
      writeFileSync(web, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  scraper2: ${bcrypt.hashSync('second', 10)}\n`);
      let status = 0;
      for (let i = 0; i < 40 && status !== 200; i++) {
        await sleep(100);
        status = (await httpsGet(`${url}/metrics`, { ca, user: 'scraper2', password: 'second' })).status;
      }
      expect(status).toBe(200);
      expect((await httpsGet(`${url}/metrics`, { ca, user: 'prometheus', password })).status).toBe(401);
      // a broken file keeps the last good configuration
      writeFileSync(web, 'basic_auth_users: [\n');
      await sleep(1200);
      expect((await httpsGet(`${url}/metrics`, { ca, user: 'scraper2', password: 'second' })).status).toBe(200);
    } finally {
      const res = await t.stop();
      expect(res.code).toBe(0);
      // credentials and hashes never reach the log
      expect(res.stderr).not.toContain(password);
      expect(res.stderr).not.toContain(hash);
      expect(res.stderr).toMatch(/--web-config .*: not YAML: .*keeping the configuration read before/);
    }
  }, 120_000);

  it('client certificates: RequireAndVerifyClientCert refuses a client without one, serves one the CA signed', async () => {
    const web = join(dir, 'mtls.yml');
    writeFileSync(web, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.monitoring]\n`);
    const mport = port();
    const t = start(['serve', '--listen', `127.0.0.1:${mport}`, '--netns', lab.netns('mtls'), '--web-config', web]);
    await t.ready();
    try {
      const url = `https://127.0.0.1:${mport}/metrics`;
      const without = await httpsGet(url, { ca });
      expect(without.status).toBe(403);
      expect(without.body).not.toMatch(/droptrace_/);
      // the server's own certificate is signed by the CA too, but lacks the allowed SAN
      const wrongSan = await httpsGet(url, { ca, cert: readFileSync(join(dir, 'server.crt'), 'utf8'), key: readFileSync(join(dir, 'server.key'), 'utf8') });
      expect(wrongSan.status).toBe(403);
      const withCert = await httpsGet(url, { ca, cert: readFileSync(join(dir, 'client.crt'), 'utf8'), key: readFileSync(join(dir, 'client.key'), 'utf8') });
      expect(withCert.status).toBe(200);
      expect(withCert.body).toMatch(/^droptrace_build_info\{/m);
    } finally {
      await t.stop();
    }
  });

  it('a web config it cannot honour is a usage error before anything attaches', async () => {
    const web = join(dir, 'bad.yml');
    writeFileSync(web, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n`);
    const res = spawnSync(process.execPath, [BIN, 'serve', '--web-config', web], { encoding: 'utf8' });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/--web-config .*bad\.yml: tls_server_config\.cipher_suites: not supported/);
    // a key that is not the certificate's: the file's error, before anything listens
    const pair = join(dir, 'pair.yml');
    writeFileSync(pair, `tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n`);
    const mismatch = spawnSync(process.execPath, [BIN, 'serve', '--web-config', pair], { encoding: 'utf8' });
    expect(mismatch.status).toBe(2);
    expect(mismatch.stderr).toMatch(/pair\.yml: tls_server_config: the certificate, key or CA do not load: .*key values mismatch/);
    const missing = spawnSync(process.execPath, [BIN, 'serve', '--web-config', join(dir, 'none.yml')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/none\.yml: cannot read it: ENOENT/);
  });
});
