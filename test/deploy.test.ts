/**
 * The Kubernetes manifests, checked offline: valid YAML, the fields the API
 * server requires, selectors that match, every mounted volume declared, the
 * capabilities exactly those documented; the Grafana dashboard queries the
 * metrics serve really exports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DropMetrics } from '../src/analysis/metrics.js';
import { metricsRegistry } from '../src/analysis/serving.js';
import { makeNaming } from '../src/model/naming.js';
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

  it('mounts only declared volumes, read-only, including BTF, tracefs, /proc and the pod logs', () => {
    const pod = ds.spec.template.spec;
    const declared = new Set(pod.volumes.map((v: { name: string }) => v.name));
    const mounts = pod.containers[0].volumeMounts;
    for (const m of mounts) {
      expect(declared.has(m.name)).toBe(true);
      expect(m.readOnly).toBe(true);
    }
    const paths = pod.volumes.map((v: { hostPath: { path: string } }) => v.hostPath.path);
    expect(paths).toEqual(expect.arrayContaining(['/sys/kernel/btf', '/sys/kernel/tracing', '/proc', '/var/log/pods']));
  });

  it('the Service selects the DaemonSet pods; the ServiceMonitor selects the Service and its port', () => {
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels[k]).toBe(v);
    expect(svc.spec.ports.map((p: { name: string }) => p.name)).toContain(sm.spec.endpoints[0].port);
  });

  it('the Grafana dashboard only queries metrics serve exports', async () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana-dashboard.json'), 'utf8'));
    // the names serve's registry really has, from the registry itself
    const metrics = new DropMetrics(makeNaming(null, new ReasonTable([], 'none')), () => '-', () => null, 10);
    const zero = { delivered: 0, lost: 0, mapFull: 0, seen: 0, droppedInProcess: 0, stackFailures: 0, sampledOut: 0, missed: 0, readError: 0, closed: false };
    const exported = (await metricsRegistry(metrics, () => zero, { version: 'x', kernel: 'x', attach: 'x' }).getMetricsAsJSON()).map((m) => m.name);
    expect(exported.length).toBeGreaterThan(8);
    const exprs: string[] = dash.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(3);
    for (const e of exprs) for (const name of e.match(/droptrace_[a-z_]+/g) ?? []) expect(exported).toContain(name);
  });
});
