/**
 * The Kubernetes manifests, checked offline: each against the Kubernetes API's schemas
 * (kubernetes-models: types, required fields, enums), selectors that match, every mounted volume
 * declared, the capabilities exactly those documented, the pod hardening the issue tracker asked
 * for; the Grafana dashboard shows every metric serve exports and each query parses (promtool).
 * The schemas accept unknown fields, as the API server does without strict validation.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { DropMetrics } from '../src/analysis/metrics.js';
import { metricsRegistry } from '../src/analysis/serving.js';
import { makeNaming } from '../src/model/naming.js';
import { parseWebConfig } from '../src/formats/web-config.js';
import { OPEN_PATHS } from '../src/views/web-guard.js';
import { ReasonTable } from '../src/model/reasons.js';
import { ROOT } from './helpers/cli.js';

const load = (f: string) => parse(readFileSync(join(ROOT, 'deploy', f), 'utf8'));

describe('deploy/', () => {
  const ds = load('daemonset.yaml');
  const svc = load('service.yaml');
  const sm = load('servicemonitor.yaml');

  it.each([
    ['daemonset.yaml', 'apps/v1', 'DaemonSet'],
    ['service.yaml', 'v1', 'Service'],
    ['servicemonitor.yaml', 'monitoring.coreos.com/v1', 'ServiceMonitor'],
  ])('%s is a %s %s with a name and namespace', (file, apiVersion, kind) => {
    const doc = load(file);
    expect(doc.apiVersion).toBe(apiVersion);
    expect(doc.kind).toBe(kind);
    expect(doc.metadata.name).toMatch(/^[a-z0-9-]+$/);
    expect(doc.metadata.namespace).toBe('kube-system');
  });

  it('every manifest is valid against the Kubernetes schemas, and so is the pod the DaemonSet makes', () => {
    expect(() => new DaemonSet(ds).validate()).not.toThrow();
    expect(() => new Service(svc).validate()).not.toThrow();
    expect(() => new ServiceMonitor(sm).validate()).not.toThrow();
    expect(() => new Pod({ metadata: ds.spec.template.metadata, spec: ds.spec.template.spec }).validate()).not.toThrow();
    // and the check can fail: a list given as a string is refused
    const broken = structuredClone(ds);
    broken.spec.template.spec.containers[0].securityContext.capabilities.add = 'BPF';
    expect(() => new DaemonSet(broken).validate()).toThrow(/capabilities\/add must be array/);
  });

  it('kustomization.yaml applies every manifest in deploy/ and is the one place the image is named', () => {
    const k = load('kustomization.yaml');
    const manifests = readdirSync(join(ROOT, 'deploy')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...k.resources].sort()).toEqual(manifests.sort());
    const image: string = ds.spec.template.spec.containers[0].image;
    expect(k.images).toHaveLength(1);
    expect(image).toBe(`${k.images[0].name}:${k.images[0].newTag}`);
    // qualified: no short-name lookup on the node
    expect(image).toMatch(/^[a-z0-9.-]+\/[a-z0-9._/-]+:[\w.-]+$/);
    for (const f of manifests.filter((f) => f !== 'daemonset.yaml')) expect(readFileSync(join(ROOT, 'deploy', f), 'utf8')).not.toContain('droptrace:');
  });

  it('the pod is hardened: RuntimeDefault seccomp, no service-account token, Linux nodes only, one scrape mechanism, /metrics not on 0.0.0.0', () => {
    const pod = ds.spec.template.spec;
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.nodeSelector['kubernetes.io/os']).toBe('linux');
    // scraped through the Service by the ServiceMonitor only: annotations would scrape each node twice
    expect(JSON.stringify(ds.spec.template.metadata.annotations ?? {})).not.toMatch(/prometheus\.io/);
    const c = pod.containers[0];
    const listen = c.args.find((a: string) => a.startsWith('--listen='));
    expect(listen).toBe('--listen=$(NODE_IP):9568');
    expect(c.env.find((e: { name: string }) => e.name === 'NODE_IP').valueFrom.fieldRef.fieldPath).toBe('status.hostIP');
    // NetworkPolicy does not apply to hostNetwork pods: the file must not offer it as the way
    const text = readFileSync(join(ROOT, 'deploy/daemonset.yaml'), 'utf8');
    expect(text).not.toMatch(/restrict with a NetworkPolicy/i);
    expect(text).toMatch(/NetworkPolicy\s+does\s*\n?\s*#?\s*not apply/);
  });

  it('the DaemonSet selects its own pods and runs serve on the node', () => {
    const spec = ds.spec;
    for (const [k, v] of Object.entries(spec.selector.matchLabels)) expect(spec.template.metadata.labels[k]).toBe(v);
    const pod = spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBe(true);
    const c = pod.containers[0];
    expect(c.name).toBeTruthy();
    expect(c.image).toBeTruthy();
    expect(c.args[0]).toBe('serve');
    expect(c.ports[0].containerPort).toBe(9568);
  });

  it('grants the documented capabilities and no more: no privileged, no SYS_ADMIN', () => {
    const sc = ds.spec.template.spec.containers[0].securityContext;
    expect(sc.privileged).toBe(false);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    expect([...sc.capabilities.add].sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON', 'SYSLOG', 'SYS_PTRACE', 'SYS_RESOURCE']);
    const comment = readFileSync(join(ROOT, 'deploy/daemonset.yaml'), 'utf8');
    for (const cap of sc.capabilities.add) expect(comment).toMatch(new RegExp(`#.*\\b${cap}\\b`));
  });

  it('/metrics guards itself: serve reads a web config from a Secret (TLS, basic auth our parser accepts), probes use HTTPS, the ServiceMonitor scrapes with the CA and credentials', () => {
    const pod = ds.spec.template.spec;
    const c = pod.containers[0];
    const arg = c.args.find((a: string) => a.startsWith('--web-config='));
    expect(arg).toBe('--web-config=/etc/droptrace/web/web-config.yml');
    const mountOf = (dirPath: string) => c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === dirPath);
    const secretOf = (name: string) => pod.volumes.find((v: { name: string }) => v.name === name).secret.secretName;
    expect(secretOf(mountOf('/etc/droptrace/web').name)).toBe('droptrace-web-config');
    expect(secretOf(mountOf('/etc/droptrace/tls').name)).toBe('droptrace-tls');
    for (const probe of [c.readinessProbe, c.livenessProbe]) expect(probe.httpGet).toMatchObject({ scheme: 'HTTPS', path: '/healthz' });
    expect(OPEN_PATHS.has('/healthz')).toBe(true);

    const secrets = parseAllDocuments(readFileSync(join(ROOT, 'deploy/web-config.yaml'), 'utf8')).map((d) => d.toJS());
    for (const s of secrets) {
      expect(() => new Secret(s).validate()).not.toThrow();
      expect(s.metadata.namespace).toBe('kube-system');
    }
    const web = secrets.find((s) => s.metadata.name === 'droptrace-web-config');
    const config = parseWebConfig(web.stringData['web-config.yml'], '/etc/droptrace/web');
    // the certificate and key are where the TLS Secret is mounted
    expect(config.tls?.cert).toEqual({ file: '/etc/droptrace/tls/tls.crt' });
    expect(config.tls?.key).toEqual({ file: '/etc/droptrace/tls/tls.key' });
    expect([...config.users.keys()]).toEqual(['prometheus']);

    const ep = sm.spec.endpoints[0];
    expect(ep.scheme).toBe('https');
    expect(ep.tlsConfig.ca.secret).toEqual({ name: 'droptrace-tls', key: 'ca.crt' });
    expect(ep.tlsConfig.insecureSkipVerify ?? false).toBe(false);
    const scrape = secrets.find((s) => s.metadata.name === ep.basicAuth.password.name);
    expect(Object.keys(scrape.stringData)).toEqual(expect.arrayContaining([ep.basicAuth.username.key, ep.basicAuth.password.key]));
    expect(scrape.stringData[ep.basicAuth.username.key]).toBe([...config.users.keys()][0]);
  });

  it('mounts only declared volumes, read-only, including BTF, tracefs, /proc, the pod logs and the cgroup hierarchy', () => {
    const pod = ds.spec.template.spec;
    const declared = new Set(pod.volumes.map((v: { name: string }) => v.name));
    const mounts = pod.containers[0].volumeMounts;
    for (const m of mounts) {
      expect(declared.has(m.name)).toBe(true);
      expect(m.readOnly).toBe(true);
    }
    const paths = pod.volumes.filter((v: { hostPath?: unknown }) => v.hostPath).map((v: { hostPath: { path: string } }) => v.hostPath.path);
    expect(paths).toEqual(expect.arrayContaining(['/sys/kernel/btf', '/sys/kernel/tracing', '/proc', '/var/log/pods', '/sys/fs/cgroup']));
    // --node-root is where the host's paths are mounted: the cgroup hierarchy is found under it
    expect(mounts.find((m: { name: string }) => m.name === 'cgroup').mountPath).toBe('/host/sys/fs/cgroup');
  });

  it('the Service selects the DaemonSet pods; the ServiceMonitor selects the Service and its port', () => {
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels[k]).toBe(v);
    expect(svc.spec.ports.map((p: { name: string }) => p.name)).toContain(sm.spec.endpoints[0].port);
  });

  const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana-dashboard.json'), 'utf8'));
  const exprs: string[] = dash.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));

  it('the Grafana dashboard shows every metric serve exports, and queries nothing else', async () => {
    // the names serve's registry really has, from the registry itself
    const metrics = new DropMetrics(makeNaming(null, new ReasonTable([], 'none')), () => '-', () => null, 10);
    const zero = { delivered: 0, lost: 0, mapFull: 0, seen: 0, droppedInProcess: 0, stackFailures: 0, sampledOut: 0, missed: 0, readError: 0, closed: false };
    const exported = (await metricsRegistry(metrics, () => zero, { version: 'x', kernel: 'x', attach: 'x' }).getMetricsAsJSON()).map((m) => m.name);
    expect(exported.length).toBeGreaterThan(8);
    const queried = new Set(exprs.flatMap((e) => e.match(/droptrace_[a-z_]+/g) ?? []));
    expect([...queried].sort()).toEqual([...exported].sort());
  });

  it('no dashboard query hides a series behind `or`, and each is scoped to the chosen nodes', () => {
    for (const e of exprs) {
      expect(e).not.toMatch(/\bor\b/);
      expect(e).toContain('instance=~"$node"');
    }
  });

  it('every dashboard query parses (promtool check rules)', () => {
    const promtool = spawnSync('promtool', ['--version']);
    expect(promtool.error, 'promtool is missing: scripts/setup --test installs it (Debian package prometheus)').toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'droptrace-promtool-'));
    try {
      const rules = exprs.map((e, i) => ({ record: `droptrace:check_${i}`, expr: e.replaceAll('$node', '.+') }));
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
      const res = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yaml')], { encoding: 'utf8' });
      expect(res.status, res.stdout + res.stderr).toBe(0);
      expect(res.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
      // and it can fail
      writeFileSync(join(dir, 'bad.yaml'), stringify({ groups: [{ name: 'bad', rules: [{ record: 'x:y', expr: 'sum(rate(droptrace_drops_total[5m])' }] }] }));
      expect(spawnSync('promtool', ['check', 'rules', join(dir, 'bad.yaml')]).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
