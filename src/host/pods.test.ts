import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePodCgroup, parsePodLogDirs, PodResolver } from './pods.js';

const UID = '6a1b3c4d-1111-2222-3333-444455556666';
const UIDU = UID.replace(/-/g, '_');
const CID = 'a'.repeat(64);

describe('parsePodCgroup', () => {
  it.each([
    ['cgroupfs v1', `/kubepods/burstable/pod${UID}/${CID}`, { uid: UID, container: CID, runtime: null }],
    ['cgroupfs guaranteed', `/kubepods/pod${UID}/${CID}`, { uid: UID, container: CID, runtime: null }],
    ['systemd + containerd', `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UIDU}.slice/cri-containerd-${CID}.scope`, { uid: UID, container: CID, runtime: 'containerd' }],
    ['systemd + CRI-O', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/crio-${CID}.scope`, { uid: UID, container: CID, runtime: 'cri-o' }],
    ['systemd + docker', `/kubepods.slice/kubepods-pod${UIDU}.slice/docker-${CID}.scope`, { uid: UID, container: CID, runtime: 'docker' }],
    ['pod level only', `/kubepods/besteffort/pod${UID}`, { uid: UID, container: null, runtime: null }],
  ])('%s', (_name, path, expected) => {
    expect(parsePodCgroup(path)).toEqual(expected);
  });

  it.each(['/user.slice/user-0.slice/session-1.scope', '/system.slice/containerd.service', '/', `/docker/${CID}`])('%s is not a pod', (p) => {
    expect(parsePodCgroup(p)).toBeNull();
  });

  it('reads /var/log/pods directory names', () => {
    expect(parsePodLogDirs([`kube-system_coredns-5d78c9869d-abcde_${UID}`, 'junk', `default_web_1_${UID.replace('6a', '7a')}`]).get(UID)).toEqual({ namespace: 'kube-system', pod: 'coredns-5d78c9869d-abcde' });
  });
});

describe('PodResolver on a fake node root (constructed)', () => {
  const root = mkdtempSync(join(tmpdir(), 'droptrace-node-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const proc = (pid: number, netns: number, cgroup: string, comm = 'app') => {
    mkdirSync(join(root, 'proc', String(pid), 'ns'), { recursive: true });
    symlinkSync(`net:[${netns}]`, join(root, 'proc', String(pid), 'ns', 'net'));
    writeFileSync(join(root, 'proc', String(pid), 'cgroup'), cgroup);
    writeFileSync(join(root, 'proc', String(pid), 'comm'), comm + '\n');
  };
  proc(10, 4026532001, `12:pids:/kubepods/burstable/pod${UID}/${'b'.repeat(64)}\n0::/\n`, 'pause'); // the sandbox
  proc(11, 4026532001, `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/cri-containerd-${CID}.scope\n`);
  proc(20, 4026531840, '0::/system.slice/kubelet.service\n');
  mkdirSync(join(root, 'var/log/pods', `payments_api-7f9c_${UID}`), { recursive: true });

  it('finds the pod, its namespace and name, and prefers an app container', () => {
    const r = new PodResolver({ root });
    expect(r.lookup(4026532001)).toEqual({ namespace: 'payments', pod: 'api-7f9c', uid: UID, container: CID, runtime: 'containerd' });
  });

  it('says null for the host namespace and unknown ones', () => {
    const r = new PodResolver({ root });
    expect(r.lookup(4026531840)).toBeNull();
    expect(r.lookup(12345)).toBeNull();
    expect(r.lookup(0)).toBeNull();
  });

  it('remembers a miss for a while, then looks again: a pod that appears later is found', () => {
    let t = 0;
    const r = new PodResolver({ root, missTtlMs: 5000, now: () => t });
    expect(r.lookup(4026532099)).toBeNull();
    proc(30, 4026532099, `1:name=systemd:/kubepods/pod${UID}/${CID}\n`);
    t = 4999;
    expect(r.lookup(4026532099)).toBeNull(); // within the TTL: no /proc scan per packet
    t = 5000;
    expect(r.lookup(4026532099)?.pod).toBe('api-7f9c');
  });

  it('stays bounded', () => {
    const r = new PodResolver({ root, max: 1 });
    r.lookup(4026532001);
    r.lookup(4026532099);
    expect((r as unknown as { cache: Map<number, unknown> }).cache.size).toBe(1);
  });
});
