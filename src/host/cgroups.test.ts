import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CgroupNames, cgroup2MountIn, cgroupOwners } from './cgroups.js';
import { PodResolver } from './pods.js';

const root = mkdtempSync(join(tmpdir(), 'dt-cgroups-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('cgroup2MountIn', () => {
  it('finds the cgroup2 mount of a hybrid host, and unescapes its path', () => {
    const info = [
      '25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
      '26 25 0:24 / /sys/fs/cgroup/pids rw,nosuid shared:10 - cgroup cgroup rw,pids',
      '36 25 0:31 / /sys/fs/cgroup/un\\040ified rw,nosuid,nodev,noexec,relatime shared:11 - cgroup2 cgroup2 rw,nsdelegate',
    ].join('\n');
    expect(cgroup2MountIn(info)).toBe('/sys/fs/cgroup/un ified');
    expect(cgroup2MountIn(info.split('\n').slice(0, 2).join('\n'))).toBeNull();
  });
});

describe('CgroupNames', () => {
  const mount = join(root, 'cg');
  const pod = 'kubepods/burstable/pod0b5c7a2e-1d3f-4a6b-8c9d-0e1f2a3b4c5d';
  const cid = 'f'.repeat(64);
  mkdirSync(join(mount, pod, cid), { recursive: true });
  mkdirSync(join(mount, 'system.slice', 'etcd.service'), { recursive: true });
  const ino = (rel: string) => statSync(join(mount, rel)).ino;

  it('names a cgroup id by the directory whose inode it is', () => {
    const names = new CgroupNames({ mount });
    expect(names.path(ino('system.slice/etcd.service'))).toBe('/system.slice/etcd.service');
    expect(names.path(ino(`${pod}/${cid}`))).toBe(`/${pod}/${cid}`);
    expect(names.path(ino('.'))).toBe('/');
    expect(names.path(0)).toBeNull();
  });

  it('a miss walks again only after missTtlMs: a cgroup made later is found then', () => {
    let now = 0;
    const names = new CgroupNames({ mount, missTtlMs: 5000, now: () => now });
    expect(names.path(ino('system.slice'))).toBe('/system.slice');
    mkdirSync(join(mount, 'late.scope'));
    now = 1000;
    expect(names.path(ino('late.scope'))).toBeNull();
    now = 6000;
    expect(names.path(ino('late.scope'))).toBe('/late.scope');
  });

  it('the owner of a pod\'s cgroup is the pod, named from the kubelet\'s log directories', () => {
    mkdirSync(join(root, 'var/log/pods/default_web-0_0b5c7a2e-1d3f-4a6b-8c9d-0e1f2a3b4c5d'), { recursive: true });
    const owner = cgroupOwners(new CgroupNames({ mount }), new PodResolver({ root }));
    const o = owner(ino(`${pod}/${cid}`));
    expect(o).toEqual({ path: `/${pod}/${cid}`, namespace: 'default', pod: 'web-0', container: cid });
    // the same object while the cgroup stays: writers cache what they built from it
    expect(owner(ino(`${pod}/${cid}`))).toBe(o);
    expect(owner(ino('system.slice/etcd.service'))).toEqual({ path: '/system.slice/etcd.service', namespace: null, pod: null, container: null });
    expect(owner(987654321)).toBeNull();
  });

  it('without a cgroup v2 hierarchy, nothing is named', () => {
    expect(new CgroupNames({ root: join(root, 'nothing') }).path(5)).toBeNull();
  });
});
