/**
 * The web configuration file of Prometheus exporters (exporter-toolkit's
 * --web.config.file format), for `serve --web-config`: TLS, client
 * certificates, basic auth with bcrypt hashes, response headers and a rate
 * limit. The same file a node_exporter on the node already uses works here.
 * Keys this server cannot honour are refused rather than ignored: a cipher
 * list that silently did nothing would be a weaker server than the file says.
 * Pure: YAML text in, a validated config out (file names resolved against
 * the file's directory, as exporter-toolkit does).
 */
import { isAbsolute, join } from 'node:path';
import { parse } from 'yaml';

export const CLIENT_AUTH = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuth = (typeof CLIENT_AUTH)[number];

const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
export type TlsVersion = (typeof TLS_VERSIONS)[keyof typeof TLS_VERSIONS];

/** The response headers exporter-toolkit lets a file set. */
const HEADERS = ['Content-Security-Policy', 'X-Frame-Options', 'X-Content-Type-Options', 'X-XSS-Protection', 'Strict-Transport-Security'];

export interface TlsConfig {
  /** PEM text inline, or a file to read */
  cert: { pem: string } | { file: string };
  key: { pem: string } | { file: string };
  clientAuth: ClientAuth;
  clientCaFile: string | null;
  /** a verified client certificate must carry one of these SANs (DNS, IP, e-mail or URI) */
  clientAllowedSans: string[];
  minVersion: TlsVersion;
  maxVersion: TlsVersion | null;
  preferServerCipherSuites: boolean;
}

export interface WebConfig {
  tls: TlsConfig | null;
  /** user → bcrypt hash */
  users: Map<string, string>;
  headers: Record<string, string>;
  /** token bucket: one request per intervalMs, bursts of `burst` (null: unlimited) */
  rateLimit: { intervalMs: number; burst: number } | null;
}

export class WebConfigError extends Error {}

type Obj = Record<string, unknown>;

function object(v: unknown, where: string): Obj {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new WebConfigError(`${where}: expected a mapping`);
  return v as Obj;
}

function only(o: Obj, where: string, known: readonly string[], refused: Record<string, string> = {}): void {
  for (const k of Object.keys(o)) {
    if (refused[k]) throw new WebConfigError(`${where}.${k}: ${refused[k]}`);
    if (!known.includes(k)) throw new WebConfigError(`${where}.${k}: not a key of the web configuration format (known: ${known.join(', ')})`);
  }
}

function str(v: unknown, where: string): string | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v !== 'string') throw new WebConfigError(`${where}: expected a string`);
  return v;
}

const BCRYPT = /^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$/;

/** Milliseconds of a Go duration such as "1s", "250ms", "1m30s"; 0 disables. */
function duration(v: unknown, where: string): number {
  if (typeof v === 'number' && v === 0) return 0;
  const text = String(v ?? '');
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  let ms = 0;
  let rest = text;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/.exec(rest);
    if (!m) throw new WebConfigError(`${where}: ${text}: expected a duration such as 1s or 500ms`);
    ms += Number(m[1]) * unit[m[2]];
    rest = rest.slice(m[0].length);
  }
  return ms;
}

export function parseWebConfig(text: string, dir: string): WebConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new WebConfigError(`not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const top = object(doc, 'the file');
  only(top, 'web config', ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit']);
  const path = (f: string) => (isAbsolute(f) ? f : join(dir, f));

  let tls: TlsConfig | null = null;
  if (top.tls_server_config !== undefined && top.tls_server_config !== null) {
    const t = object(top.tls_server_config, 'tls_server_config');
    only(
      t,
      'tls_server_config',
      ['cert', 'key', 'cert_file', 'key_file', 'client_auth_type', 'client_ca_file', 'client_allowed_sans', 'min_version', 'max_version', 'prefer_server_cipher_suites'],
      {
        cipher_suites: "not supported: droptrace serves with Node's (OpenSSL's) default cipher suites; remove the key",
        curve_preferences: "not supported: droptrace serves with Node's (OpenSSL's) default curves; remove the key",
      },
    );
    const pair = (inline: string, file: string) => {
      const a = str(t[inline], `tls_server_config.${inline}`);
      const b = str(t[file], `tls_server_config.${file}`);
      if (a && b) throw new WebConfigError(`tls_server_config: ${inline} and ${file} are both set; give one`);
      if (!a && !b) throw new WebConfigError(`tls_server_config: ${file} (or ${inline}) is required`);
      return a ? { pem: a } : { file: path(b!) };
    };
    const clientAuth = (str(t.client_auth_type, 'tls_server_config.client_auth_type') ?? 'NoClientCert') as ClientAuth;
    if (!CLIENT_AUTH.includes(clientAuth)) throw new WebConfigError(`tls_server_config.client_auth_type: ${clientAuth}: expected one of ${CLIENT_AUTH.join(', ')}`);
    const ca = str(t.client_ca_file, 'tls_server_config.client_ca_file');
    if ((clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert') && !ca) {
      throw new WebConfigError(`tls_server_config: client_auth_type ${clientAuth} needs client_ca_file`);
    }
    const sans = t.client_allowed_sans ?? [];
    if (!Array.isArray(sans) || sans.some((s) => typeof s !== 'string')) throw new WebConfigError('tls_server_config.client_allowed_sans: expected a list of strings');
    if (sans.length && clientAuth !== 'RequireAndVerifyClientCert') throw new WebConfigError('tls_server_config.client_allowed_sans needs client_auth_type RequireAndVerifyClientCert');
    const version = (key: string, fallback: TlsVersion | null) => {
      const v = str(t[key], `tls_server_config.${key}`);
      if (v === null) return fallback;
      const n = TLS_VERSIONS[v as keyof typeof TLS_VERSIONS];
      if (!n) throw new WebConfigError(`tls_server_config.${key}: ${v}: expected one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
      return n;
    };
    tls = {
      cert: pair('cert', 'cert_file'),
      key: pair('key', 'key_file'),
      clientAuth,
      clientCaFile: ca ? path(ca) : null,
      clientAllowedSans: sans as string[],
      // exporter-toolkit's default minimum
      minVersion: version('min_version', 'TLSv1.2')!,
      maxVersion: version('max_version', null),
      preferServerCipherSuites: t.prefer_server_cipher_suites !== false,
    };
  }

  const h = object(top.http_server_config, 'http_server_config');
  // http2 is accepted for the same file to work: this server speaks HTTP/1.1, which every scraper does
  only(h, 'http_server_config', ['http2', 'headers']);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(object(h.headers, 'http_server_config.headers'))) {
    const name = HEADERS.find((x) => x.toLowerCase() === k.toLowerCase());
    if (!name) throw new WebConfigError(`http_server_config.headers.${k}: not a header the format allows (${HEADERS.join(', ')})`);
    headers[name] = String(v);
  }

  const users = new Map<string, string>();
  for (const [user, hash] of Object.entries(object(top.basic_auth_users, 'basic_auth_users'))) {
    // the hash is never echoed: it is as good as a password to an offline guesser
    if (typeof hash !== 'string' || !BCRYPT.test(hash)) throw new WebConfigError(`basic_auth_users.${user}: expected a bcrypt hash ($2y$… from htpasswd -nBC 10 "" or similar)`);
    users.set(user, hash);
  }

  let rateLimit: WebConfig['rateLimit'] = null;
  if (top.rate_limit !== undefined && top.rate_limit !== null) {
    const r = object(top.rate_limit, 'rate_limit');
    only(r, 'rate_limit', ['interval', 'burst']);
    const intervalMs = duration(r.interval ?? 0, 'rate_limit.interval');
    const burst = Number(r.burst ?? 0);
    if (!Number.isInteger(burst) || burst < 0) throw new WebConfigError('rate_limit.burst: expected a whole number');
    if (intervalMs > 0) rateLimit = { intervalMs, burst: Math.max(1, burst) };
  }
  return { tls, users, headers, rateLimit };
}
