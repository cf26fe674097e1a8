import { describe, expect, it } from 'vitest';
import { parseWebConfig, WebConfigError } from './web-config.js';

// htpasswd -nbBC 12 "" topsecret: the $2y$ hashes exporter-toolkit's documentation makes
const HTPASSWD = '$2y$12$KTbZnVgxAIUmnu5W2bRGmuJ/in8A9sHLt2je2lxOriq8TJP0vMk1y';

describe('parseWebConfig', () => {
  it("reads exporter-toolkit's format: files against the file's directory, TLS 1.2 at least, users, headers, rate limit", () => {
    const c = parseWebConfig(
      `tls_server_config:
  cert_file: tls/server.crt
  key_file: /abs/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
http_server_config:
  http2: true
  headers:
    strict-transport-security: max-age=31536000
basic_auth_users:
  alice: ${HTPASSWD}
rate_limit:
  interval: 1s500ms
  burst: 20
`,
      '/etc/droptrace',
    );
    expect(c.tls).toMatchObject({ cert: { file: '/etc/droptrace/tls/server.crt' }, key: { file: '/abs/server.key' }, clientAuth: 'RequireAndVerifyClientCert', clientCaFile: '/etc/droptrace/ca.crt', minVersion: 'TLSv1.3', maxVersion: null });
    expect(c.headers).toEqual({ 'Strict-Transport-Security': 'max-age=31536000' });
    expect([...c.users]).toEqual([['alice', HTPASSWD]]);
    expect(c.rateLimit).toEqual({ intervalMs: 1500, burst: 20 });
    expect(parseWebConfig('', '/').tls).toBeNull();
    expect(parseWebConfig('tls_server_config:\n  cert: "PEM"\n  key: "PEM"\n', '/').tls).toMatchObject({ cert: { pem: 'PEM' }, minVersion: 'TLSv1.2', clientAuth: 'NoClientCert' });
  });

  it('refuses what it cannot honour or does not know, and never repeats a hash', () => {
    const bad = (text: string) => () => parseWebConfig(text, '/');
    expect(bad('tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [X]\n')).toThrow(/cipher_suites: not supported/);
    expect(bad('tls_server_config:\n  cert_file: a\n')).toThrow(/key_file \(or key\) is required/);
    expect(bad('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n')).toThrow(/needs client_ca_file/);
    expect(bad('tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n')).toThrow(/min_version: TLS14: expected one of TLS10/);
    expect(bad('basic_auth_users:\n  bob: plaintextpassword\n')).toThrow(/basic_auth_users\.bob: expected a bcrypt hash/);
    expect(bad('basic_auth_users:\n  bob: plaintextpassword\n')).not.toThrow(/plaintextpassword/);
    expect(bad('http_server_config:\n  headers:\n    Server: x\n')).toThrow(/headers\.Server: not a header/);
    expect(bad('tls_config:\n  cert_file: a\n')).toThrow(WebConfigError);
    expect(bad('rate_limit:\n  interval: soon\n')).toThrow(/expected a duration/);
    expect(bad('basic_auth_users: [\n')).toThrow(/not YAML/);
  });
});
