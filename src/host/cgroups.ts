/**
 * Which cgroup a cgroup v2 id names. The kernel gives a socket the cgroup v2 of the task that
 * made it, and its id is the inode of that cgroup's directory in the unified hierarchy: walking
 * the hierarchy and reading each directory's inode finds the path. Cached; a miss walks again
 * at most every missTtlMs, so a flood of drops for one unknown socket costs one walk.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupOwner } from '../model/drop.js';
import type { PodResolver } from './pods.js';

export interface CgroupNamesOptions {
  /** the node's root, as for PodResolver: "/" on a node, /host in a container, a directory in tests */
  root?: string;
  /** the cgroup v2 mount, when known; else found in /proc/self/mountinfo or at the usual places */
  mount?: string;
  /** directories visited per walk at most (a node has thousands, not millions) */
  maxDirs?: number;
  missTtlMs?: number;
  now?: () => number;
}

/** The mount point of cgroup2 in a /proc/self/mountinfo text, or null. */
export function cgroup2MountIn(mountinfo: string): string | null {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0 || !line.slice(sep + 3).startsWith('cgroup2 ')) continue;
    // mount points escape spaces and backslashes as octal
    return line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return null;
}

export class CgroupNames {
  private readonly root: string;
  private mount: string | null | undefined;
  private readonly maxDirs: number;
  private readonly missTtl: number;
  private readonly now: () => number;
  private paths = new Map<number, string>();
  private lastWalk = -Infinity;

  constructor(opts: CgroupNamesOptions = {}) {
    this.root = opts.root ?? '/';
    this.mount = opts.mount;
    this.maxDirs = opts.maxDirs ?? 100_000;
    this.missTtl = opts.missTtlMs ?? 5000;
    this.now = opts.now ?? Date.now;
  }

  /** The cgroup v2 hierarchy's mount point, or null when this node has none we can see. */
  private mountPoint(): string | null {
    if (this.mount !== undefined) return this.mount;
    const candidates: string[] = [];
    if (this.root === '/') {
      try {
        const m = cgroup2MountIn(readFileSync('/proc/self/mountinfo', 'utf8'));
        if (m) candidates.push(m);
      } catch {
        // no /proc: try the usual places
      }
    }
    candidates.push(join(this.root, 'sys/fs/cgroup'), join(this.root, 'sys/fs/cgroup/unified'));
    // cgroup.controllers is in every cgroup v2 directory and in no v1 or tmpfs one (a hybrid host's /sys/fs/cgroup)
    this.mount = candidates.find((c) => statOrNull(join(c, 'cgroup.controllers'))) ?? null;
    return this.mount;
  }

  /** The path of cgroup `id` under the mount ("/" for its root), or null when not found. */
  path(id: number): string | null {
    if (!id) return null;
    const hit = this.paths.get(id);
    if (hit !== undefined) return hit;
    if (this.now() - this.lastWalk < this.missTtl) return null;
    this.walk();
    return this.paths.get(id) ?? null;
  }

  private walk(): void {
    this.lastWalk = this.now();
    const mount = this.mountPoint();
    if (!mount) return;
    const paths = new Map<number, string>();
    const stack: string[] = ['/'];
    let visited = 0;
    while (stack.length && visited < this.maxDirs) {
      const rel = stack.pop()!;
      const dir = rel === '/' ? mount : join(mount, rel);
      const st = statOrNull(dir);
      if (!st) continue;
      visited++;
      paths.set(st.ino, rel);
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue; // removed while we walked
      }
      for (const e of entries) if (e.isDirectory()) stack.push(rel === '/' ? `/${e.name}` : `${rel}/${e.name}`);
    }
    this.paths = paths;
  }
}

function statOrNull(p: string): { ino: number } | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

/**
 * A socket's cgroup as its owner: the path, and the pod when the path is a pod's. One object
 * per cgroup while it stays the same, so a writer can cache what it built from it.
 */
export function cgroupOwners(cgroups: CgroupNames, pods: PodResolver | null): (id: number) => CgroupOwner | null {
  const owners = new Map<number, CgroupOwner>();
  return (id) => {
    const path = cgroups.path(id);
    if (path === null) return null;
    const had = owners.get(id);
    if (had && had.path === path) return had;
    const pod = pods?.ofCgroup(path) ?? null;
    const owner: CgroupOwner = { path, namespace: pod?.namespace ?? null, pod: pod?.pod ?? null, container: pod?.container ?? null };
    if (owners.size >= 10_000) owners.clear();
    owners.set(id, owner);
    return owner;
  };
}
