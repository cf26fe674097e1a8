/**
 * The container image and the DaemonSet's pod, run for real with podman: scripts/image builds
 * the image from Debian's packages and the npm registry; it runs with exactly the capabilities,
 * namespaces and read-only mounts deploy/daemonset.yaml grants (read from the manifest, so the
 * two cannot drift), traces a drop in a test namespace and serves /metrics; `podman kube play`
 * plays the DaemonSet's pod template as a Pod.
 * podman here: runc and no default ulimits (deploy/podman/containers.conf says why).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import bcrypt from 'bcryptjs';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { jsonLines, ROOT, run } from './helpers/cli.js';
import { Lab } from './helpers/netns.js';
import { pack } from './helpers/pack.js';
import { canRunKernelTests } from './helpers/kernel.js';
import { certificates, httpsGet } from './helpers/tls.js';

const canRun = canRunKernelTests('the image tests', ['podman', 'buildah', 'mmdebstrap']);

const env = { ...process.env, CONTAINERS_CONF: join(ROOT, 'deploy', 'podman', 'containers.conf') };
const podman = (args: string[]) => run(['podman', ...args], { env });
const ds = parse(readFileSync(join(ROOT, 'deploy', 'daemonset.yaml'), 'utf8'));
const podSpec = ds.spec.template.spec;
const container = podSpec.containers[0];
interface Volume {
  name: string;
  hostPath?: { path: string };
  secret?: { secretName: string };
}

/**
 * podman run flags for what the DaemonSet grants: nothing more. A Secret volume is the directory
 * `secrets` maps its name to (what the kubelet would fill from the Secret).
 */
function daemonSetFlags(seccomp: string | null, podLogs: string, secrets: Map<string, string>): string[] {
  const sc = container.securityContext;
  const flags = ['--rm', '--network', 'host', '--pid', 'host', '--cap-drop', 'all'];
  for (const cap of sc.capabilities.add) flags.push('--cap-add', cap);
  if (sc.readOnlyRootFilesystem) flags.push('--read-only');
  if (sc.allowPrivilegeEscalation === false) flags.push('--security-opt', 'no-new-privileges');
  if (seccomp) flags.push('--security-opt', `seccomp=${seccomp}`);
  const volumes = new Map<string, string>(podSpec.volumes.map((v: Volume) => [v.name, v.hostPath?.path ?? secrets.get(v.secret!.secretName)!]));
  for (const m of container.volumeMounts) {
    const host = m.name === 'pod-logs' ? podLogs : volumes.get(m.name)!;
    // HostToContainer is rslave: namespaces `ip netns add`ed after the start show up inside
    flags.push('-v', `${host}:${m.mountPath}:ro${m.mountPropagation === 'HostToContainer' ? ',rslave' : ''}`);
  }
  return flags;
}

describe.skipIf(!canRun)('the container image and the DaemonSet pod', () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-image-'));
  const tag = `localhost/droptrace:test${process.pid}`;
  const profiles = join(dir, 'seccomp');
  const profile = join(profiles, 'droptrace.json');
  const podLogs = join(dir, 'pods');
  const pods: string[] = [];
  const hadPodLogs = existsSync('/var/log/pods');
  // the Secrets the pod mounts: deploy/web-config.yaml's web config with a password we know, and
  // a certificate for 127.0.0.1 (the node's address here)
  const password = 'image test password';
  const secrets = new Map([
    ['droptrace-web-config', join(dir, 'secret-web')],
    ['droptrace-tls', join(dir, 'secret-tls')],
  ]);
  let ca = '';

  beforeAll(async () => {
    execFileSync('mkdir', ['-p', profiles, podLogs, ...secrets.values()]);
    certificates(dir);
    const tls = secrets.get('droptrace-tls')!;
    for (const [from, to] of [['server.crt', 'tls.crt'], ['server.key', 'tls.key'], ['ca.crt', 'ca.crt']]) copyFileSync(join(dir, from), join(tls, to));
    ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const shipped = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'web-config.yaml'), 'utf8')).map((d) => d.toJS()).find((d) => d.metadata.name === 'droptrace-web-config');
    // a function, not a replacement string: "$10" in a bcrypt hash would read as a group reference
    const hash = bcrypt.hashSync(password, 10);
    const webConfig = shipped.stringData['web-config.yml'].replace(/^(\s+prometheus: ).*$/m, (_m: string, head: string) => head + hash);
    writeFileSync(join(secrets.get('droptrace-web-config')!, 'web-config.yml'), webConfig);
    writeFileSync(profile, execFileSync(join(ROOT, 'scripts', 'seccomp-profile'), { encoding: 'utf8' }));
    const tarball = pack(dir);
    // asynchronous: a build of minutes must not block the worker, which vitest pings meanwhile
    const built = await run([join(ROOT, 'scripts', 'image'), '--tag', tag, '--tarball', tarball], { env });
    if (built.code !== 0) throw new Error(`scripts/image failed (${built.code}):\n${built.stderr.slice(-4000)}`);
  }, 600_000);
  afterAll(async () => {
    for (const p of pods) await podman(['pod', 'rm', '-f', '-t', '0', p]);
    await podman(['rmi', '-f', tag]);
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (!hadPodLogs && existsSync('/var/log/pods')) rmdirSync('/var/log/pods');
  }, 60_000);

  it('is under 150 MB', async () => {
    const res = await podman(['image', 'inspect', '--format', '{{.Size}}', tag]);
    expect(Number(res.stdout.trim())).toBeGreaterThan(50e6);
    expect(Number(res.stdout.trim())).toBeLessThan(150e6);
  });

  it("with the DaemonSet's capabilities: podman's default seccomp refuses bpf() and says so; with the profile scripts/seccomp-profile writes, check passes", async () => {
    const refused = await podman(['run', ...daemonSetFlags(null, podLogs, secrets), tag, 'check']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/tracepoint\s+fails: a seccomp profile refuses bpf\(\) although we hold CAP_BPF/);
    const res = await podman(['run', ...daemonSetFlags(profile, podLogs, secrets), tag, 'check']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/addon\s+yes \/opt\/droptrace\/node_modules\/droptrace\/prebuilds\/linux-x64\//);
    expect(res.stdout).toMatch(/privileges\s+yes/);
    expect(res.stdout).toMatch(/tracepoint\s+works \(tp_btf\)/);
  });

  it('traces a drop in a test namespace from inside the container, exactly as the kernel counted it', async () => {
    const ns = lab.netns('img');
    const ready = join(dir, 'ready');
    const before = lab.snmp(ns, 'Udp', 'NoPorts');
    const traced = podman(['run', ...daemonSetFlags(profile, podLogs, secrets), '-v', `${dir}:/run/dt`, tag,
      'trace', '--json', '--netns', ns, '--port', '9432', '--duration', '8', '--ready-file', '/run/dt/ready']);
    for (let t = 0; !existsSync(ready) && t < 300; t++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(ready)).toBe(true);
    lab.udp(ns, '127.0.0.1', 9432, 7);
    const res = await traced;
    expect(res.code, res.stderr).toBe(0);
    const drops = jsonLines<{ reason: string; function: string; dport: number }>(res.stdout);
    expect(drops).toHaveLength(lab.snmp(ns, 'Udp', 'NoPorts') - before);
    expect(drops.map((d) => [d.reason, d.function, d.dport])).toEqual(Array(7).fill(['NO_SOCKET', '__udp4_lib_rcv', 9432]));
  }, 60_000);

  const plainGet = (url: string) => fetch(url).then((r) => r.text(), () => '');
  const guardedGet = (url: string) => httpsGet(url, { ca, user: 'prometheus', password }).then((r) => r.body, () => '');

  /** Scrapes url until the drops of ns (labelled by inode) reach want (serve reads counts on a timer). */
  async function dropsOf(url: string, ns: string, want: number, get: (url: string) => Promise<string> = plainGet): Promise<number> {
    const inode = statSync(`/run/netns/${ns}`).ino;
    let n = -1;
    for (let t = 0; t < 60 && n < want; t++) {
      await new Promise((r) => setTimeout(r, 500));
      const body = await get(url);
      n = body
        .split('\n')
        .filter((l) => l.startsWith('droptrace_drops_total{') && l.includes(`netns="${inode}"`) && l.includes('function="__udp4_lib_rcv"'))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    }
    return n;
  }

  it('serves /metrics from the container: the drops of a test namespace, exactly', async () => {
    const ns = lab.netns('srv');
    const name = `droptrace-serve-${process.pid}`;
    pods.push(name);
    const res = await podman(['run', '-d', '--name', name, ...daemonSetFlags(profile, podLogs, secrets).filter((f) => f !== '--rm'), tag,
      'serve', '--listen=127.0.0.1:9571', '--node-root=/host']);
    expect(res.code, res.stderr).toBe(0);
    for (let t = 0; t < 100 && !(await fetch('http://127.0.0.1:9571/healthz').then((r) => r.ok, () => false)); t++) await new Promise((r) => setTimeout(r, 200));
    lab.udp(ns, '127.0.0.1', 9433, 9);
    expect(await dropsOf('http://127.0.0.1:9571/metrics', ns, 9)).toBe(9);
    await podman(['rm', '-f', '-t', '0', name]);
  }, 90_000);

  /**
   * The DaemonSet's pod template as a Pod, with what the kubelet does and podman 4.3 does not
   * done here: status.hostIP and $(VAR) in args filled in; the Localhost profile given as the
   * annotation podman reads (it ignores securityContext.seccompProfile).
   */
  function podYaml(name: string, seccomp: 'as shipped' | 'Localhost'): string {
    const spec = structuredClone(podSpec);
    const c = spec.containers[0];
    c.image = tag;
    // the node's address; here 127.0.0.1, as nothing may be configured in the root namespace
    c.env = c.env.map((e: { name: string }) => (e.name === 'NODE_IP' ? { name: 'NODE_IP', value: '127.0.0.1' } : e));
    const vars = new Map<string, string>(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    c.args = c.args.map((a: string) => a.replace(/\$\((\w+)\)/g, (_, v: string) => vars.get(v) ?? `$(${v})`));
    // podman 4.3 refuses containerPort with host networking ("PortMappings can only be used with
    // Bridge"); Kubernetes only documents the port there
    delete c.ports;
    // a Secret volume as the directory the kubelet would fill from it
    spec.volumes = spec.volumes.map((v: Volume) => (v.secret ? { name: v.name, hostPath: { path: secrets.get(v.secret.secretName)!, type: 'Directory' } } : v));
    const annotations: Record<string, string> = {};
    if (seccomp === 'Localhost') {
      spec.securityContext.seccompProfile = { type: 'Localhost', localhostProfile: 'droptrace.json' };
      annotations['seccomp.security.alpha.kubernetes.io/pod'] = 'localhost/droptrace.json';
    }
    return stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: ds.spec.template.metadata.labels, annotations }, spec });
  }

  it('podman kube play of the DaemonSet pod: as shipped (RuntimeDefault) the log says seccomp refused bpf(); with the Localhost profile the manifest prescribes, /metrics counts a drop', async () => {
    const shipped = `droptrace-kube-${process.pid}`;
    pods.push(shipped);
    writeFileSync(join(dir, 'shipped.yaml'), podYaml(shipped, 'as shipped'));
    expect((await podman(['kube', 'play', join(dir, 'shipped.yaml')])).code).toBe(0);
    let log = '';
    for (let t = 0; t < 60 && !/seccomp profile refuses bpf/.test(log); t++) {
      await new Promise((r) => setTimeout(r, 250));
      log = (await podman(['logs', `${shipped}-droptrace`])).stderr;
    }
    expect(log).toMatch(/droptrace: a seccomp profile refuses bpf\(\) although we hold CAP_BPF/);
    await podman(['pod', 'rm', '-f', '-t', '0', shipped]);

    const local = `droptrace-kubel-${process.pid}`;
    pods.push(local);
    writeFileSync(join(dir, 'local.yaml'), podYaml(local, 'Localhost'));
    const play = await podman(['kube', 'play', '--seccomp-profile-root', profiles, join(dir, 'local.yaml')]);
    expect(play.code, play.stderr).toBe(0);
    const ns = lab.netns('kube');
    // the manifest's --web-config: TLS with the mounted certificate, basic auth from the mounted file
    const healthy = () => httpsGet('https://127.0.0.1:9568/healthz', { ca }).then((r) => r.status === 200, () => false);
    for (let t = 0; t < 100 && !(await healthy()); t++) await new Promise((r) => setTimeout(r, 200));
    lab.udp(ns, '127.0.0.1', 9434, 5);
    expect(await dropsOf('https://127.0.0.1:9568/metrics', ns, 5, guardedGet)).toBe(5);
    expect((await httpsGet('https://127.0.0.1:9568/metrics', { ca })).status).toBe(401);
    expect(await fetch('http://127.0.0.1:9568/metrics').then((r) => r.status, () => 0)).toBe(400);
    const inspect = JSON.parse((await podman(['container', 'inspect', `${local}-droptrace`])).stdout)[0];
    expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
    // the process holds exactly the capabilities the manifest adds, nothing else (of those this
    // machine has at all: its root lacks SYS_RESOURCE in the bounding set, so no container gets it)
    const NUMBER: Record<string, number> = { NET_ADMIN: 12, SYS_PTRACE: 19, SYS_RESOURCE: 24, SYSLOG: 34, PERFMON: 38, BPF: 39 };
    const caps = (status: string, field: string) => BigInt('0x' + new RegExp(`^${field}:\\s*([0-9a-f]+)`, 'm').exec(status)![1]);
    const want = container.securityContext.capabilities.add.reduce((m: bigint, c: string) => m | (1n << BigInt(NUMBER[c])), 0n);
    const bounding = caps(readFileSync('/proc/self/status', 'utf8'), 'CapBnd');
    expect(caps(readFileSync(`/proc/${inspect.State.Pid}/status`, 'utf8'), 'CapEff')).toBe(want & bounding);
  }, 120_000);
});
