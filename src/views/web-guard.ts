/**
 * What stands between a scraper and /metrics under `serve --web-config`:
 * client certificates, a rate limit and basic auth, from an exporter-toolkit
 * web configuration file that is read again when it changes (certificates
 * rotated by cert-manager or a Secret update take effect without a restart,
 * as with exporter-toolkit). Credentials and hashes are never logged.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import { parseWebConfig, WebConfigError, type TlsConfig, type WebConfig } from '../formats/web-config.js';

export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Paths served without basic auth (never without TLS): a liveness probe cannot send credentials. */
export const OPEN_PATHS = new Set(['/healthz']);

/**
 * Compared for unknown users so that they take as long as known ones: the
 * hash (cost 10, as htpasswd -B) of 48 random hex digits nobody kept.
 */
const DUMMY_HASH = '$2b$10$WyMgbs8MU.zT28ptGjImPuzH5GY1gqATIJFVj3x8oPeZxO57q5q.a';
const CACHE_MAX = 256;
const RECHECK_MS = 1000;

export class WebGuard {
  private config: WebConfig;
  private tlsOptions: SecureContextOptions | null;
  private stamp: string;
  private checkedAt = 0;
  private tokens = 0;
  private tokensAt = 0;
  /** sha256(user, password, hash) of credentials that matched: bcrypt costs ~100 ms a check */
  private readonly verified = new Set<string>();
  /** applies a reloaded certificate, key or CA to the listening server */
  onTls: ((o: SecureContextOptions) => void) | null = null;

  constructor(
    readonly file: string,
    private readonly warn: (line: string) => void = (l) => process.stderr.write(`droptrace: ${l}\n`),
  ) {
    this.stamp = this.stat();
    this.config = this.read();
    this.tlsOptions = this.config.tls ? tlsOptionsOf(this.config.tls) : null;
  }

  /** The TLS server's options at start (null: plain HTTP). */
  get tls(): (SecureContextOptions & { requestCert: boolean; rejectUnauthorized: false }) | null {
    if (!this.config.tls || !this.tlsOptions) return null;
    // verification is decided per request below, so that each client_auth_type says what it says
    return { ...this.tlsOptions, requestCert: this.config.tls.clientAuth !== 'NoClientCert', rejectUnauthorized: false };
  }

  get users(): number {
    return this.config.users.size;
  }

  get headers(): Record<string, string> {
    return this.config.headers;
  }

  /** null to serve the request, else how to refuse it. */
  async check(req: IncomingMessage, path: string): Promise<Refusal | null> {
    this.maybeReload();
    const c = this.config;
    if (c.tls) {
      const refused = clientCertRefusal(c.tls, req.socket as TLSSocket);
      if (refused) return refused;
    }
    if (c.rateLimit && !this.take(c.rateLimit)) return { status: 429, headers: {}, body: 'Too Many Requests\n' };
    if (!c.users.size || OPEN_PATHS.has(path)) return null;
    const creds = basicCredentials(req.headers.authorization);
    const hash = creds ? c.users.get(creds.user) : undefined;
    if (creds && hash) {
      const key = createHash('sha256').update(`${creds.user}\0${creds.password}\0${hash}`).digest('hex');
      if (this.verified.has(key)) return null;
      if (await bcrypt.compare(creds.password, hash)) {
        if (this.verified.size >= CACHE_MAX) this.verified.clear();
        this.verified.add(key);
        return null;
      }
    } else if (creds) {
      await bcrypt.compare(creds.password, DUMMY_HASH);
    }
    return { status: 401, headers: { 'WWW-Authenticate': 'Basic realm="droptrace"' }, body: 'Unauthorized\n' };
  }

  private stat(): string {
    try {
      const s = statSync(this.file);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch (err) {
      throw new WebConfigError(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  private read(): WebConfig {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new WebConfigError(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return parseWebConfig(text, dirname(this.file));
  }

  /** Reads the file again if it changed (at most once a second); a bad new file keeps the old configuration. */
  private maybeReload(): void {
    const now = Date.now();
    if (now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    let stamp: string;
    try {
      stamp = this.stat();
    } catch (err) {
      if (this.stamp !== 'gone') this.warn(`--web-config ${this.file}: ${(err as Error).message}; keeping the configuration read before`);
      this.stamp = 'gone';
      return;
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      const next = this.read();
      if (!!next.tls !== !!this.config.tls) throw new WebConfigError('TLS turned on or off: restart droptrace serve for that');
      if (next.tls && next.tls.clientAuth !== this.config.tls!.clientAuth) throw new WebConfigError('client_auth_type changed: restart droptrace serve for that');
      const tls = next.tls ? tlsOptionsOf(next.tls) : null;
      if (tls) this.onTls?.(tls);
      this.config = next;
      this.tlsOptions = tls;
      this.verified.clear();
      this.warn(`--web-config ${this.file}: read again (${next.users.size} users${next.tls ? ', TLS' : ''})`);
    } catch (err) {
      this.warn(`--web-config ${this.file}: ${(err as Error).message}; keeping the configuration read before`);
    }
  }

  private take(r: { intervalMs: number; burst: number }): boolean {
    const now = Date.now();
    this.tokens = Math.min(r.burst, this.tokens + (now - this.tokensAt) / r.intervalMs);
    if (this.tokensAt === 0) this.tokens = r.burst;
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The certificate, key and CA of a TLS config, read now (an unreadable file is an error naming it). */
function tlsOptionsOf(t: TlsConfig): SecureContextOptions {
  const pem = (x: { pem: string } | { file: string }, what: string) => {
    if ('pem' in x) return x.pem;
    try {
      return readFileSync(x.file, 'utf8');
    } catch (err) {
      throw new WebConfigError(`tls_server_config: ${what} ${x.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const o: SecureContextOptions = { cert: pem(t.cert, 'cert_file'), key: pem(t.key, 'key_file'), minVersion: t.minVersion, honorCipherOrder: t.preferServerCipherSuites };
  if (t.maxVersion) o.maxVersion = t.maxVersion;
  if (t.clientCaFile) o.ca = pem({ file: t.clientCaFile }, 'client_ca_file');
  // loaded here, so that a key that does not match its certificate is the file's error at start
  // (and a bad rotation keeps the last good pair), not a failure of the listening server
  try {
    createSecureContext(o);
  } catch (err) {
    throw new WebConfigError(`tls_server_config: the certificate, key or CA do not load: ${(err as Error).message}`);
  }
  return o;
}

/** What each client_auth_type refuses, as Go's crypto/tls policies of the same names. */
function clientCertRefusal(t: TlsConfig, socket: TLSSocket): Refusal | null {
  if (t.clientAuth === 'NoClientCert' || t.clientAuth === 'RequestClientCert') return null;
  const cert = socket.getPeerCertificate?.();
  const given = !!cert && Object.keys(cert).length > 0;
  const refuse = (why: string): Refusal => ({ status: 403, headers: {}, body: `Forbidden: ${why}\n` });
  if (!given) return t.clientAuth === 'VerifyClientCertIfGiven' ? null : refuse('a client certificate is required');
  if (t.clientAuth === 'RequireAnyClientCert') return null;
  if (!socket.authorized) return refuse(`the client certificate did not verify against client_ca_file (${socket.authorizationError})`);
  if (t.clientAllowedSans.length) {
    const sans = (cert.subjectaltname ?? '').split(/,\s*/).map((s) => s.replace(/^(DNS|IP Address|email|URI):/, ''));
    if (!t.clientAllowedSans.some((s) => sans.includes(s))) return refuse('the client certificate has none of client_allowed_sans');
  }
  return null;
}

function basicCredentials(header: string | undefined): { user: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return null;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? null : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}
