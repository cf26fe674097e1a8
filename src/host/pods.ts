/**
 * Which Kubernetes pod a network namespace belongs to, from the node's own
 * files: netns inode → processes in it (/proc/PID/ns/net) → their cgroup
 * (/proc/PID/cgroup) → pod UID and container id → namespace/name from the
 * kubelet's log directories (/var/log/pods/<ns>_<name>_<uid>). Every path
 * hangs off a configurable root, so tests build a fake node. Cached,
 * refreshed on misses, bounded.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface PodRef {
  namespace: string | null;
  pod: string | null;
  uid: string;
  /** container id (64 hex), or null when only the pod sandbox was seen */
  container: string | null;
  runtime: 'containerd' | 'cri-o' | 'docker' | null;
}

/**
 * Parses one /proc/PID/cgroup path. Handles the cgroupfs and systemd drivers,
 * cgroup v1 and v2, and containerd, CRI-O and docker container names:
 *   /kubepods/burstable/pod<uid>/<cid>
 *   /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<cid>.scope
 *   …/crio-<cid>.scope, …/docker-<cid>.scope
 */
export function parsePodCgroup(path: string): { uid: string; container: string | null; runtime: PodRef['runtime'] } | null {
  const m = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/([^/]+))?/.exec(path);
  if (!m || !/kubepods/.test(path)) return null;
  const uid = m[1].replace(/_/g, '-');
  const leaf = m[2] ?? '';
  let container: string | null = null;
  let runtime: PodRef['runtime'] = null;
  const c = /^(?:(cri-containerd|crio|docker)-)?([0-9a-f]{64})(?:\.scope)?$/.exec(leaf);
  if (c) {
    container = c[2];
    runtime = c[1] === 'cri-containerd' ? 'containerd' : c[1] === 'crio' ? 'cri-o' : c[1] === 'docker' ? 'docker' : null;
  }
  return { uid, container, runtime };
}

/** /var/log/pods/<namespace>_<name>_<uid> → uid → {namespace, name}. */
export function parsePodLogDirs(names: string[]): Map<string, { namespace: string; pod: string }> {
  const out = new Map<string, { namespace: string; pod: string }>();
  for (const n of names) {
    const m = /^([^_]+)_(.+)_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(n);
    if (m) out.set(m[3], { namespace: m[1], pod: m[2] });
  }
  return out;
}

export interface PodResolverOptions {
  /** the node's root: "/" on a node, a mount of it in a container (/host), a directory in tests */
  root?: string;
  /** where the kubelet keeps pod log directories: relative to root, or an absolute path */
  podLogs?: string;
  /** how many namespaces to remember */
  max?: number;
  /** how long a namespace without a pod is remembered as such before /proc is scanned again */
  missTtlMs?: number;
  /** the clock, for tests */
  now?: () => number;
}

/** "namespace/name" (or the UID when the name is unknown), for labels and table rows. */
export function podName(p: PodRef | null): string | null {
  if (!p) return null;
  return p.pod ? `${p.namespace ?? '?'}/${p.pod}` : `pod ${p.uid}`;
}

/**
 * The pod a drop belongs to: its own namespace's pod, else the pod at the
 * other end of the veth it was dropped on (a pod's host-side interface).
 */
export function podOfDrop(pods: PodResolver, peers: { peer(netns: number, ifindex: number): number | null }, netns: number, ifindex: number): PodRef | null {
  const own = pods.lookup(netns);
  if (own) return own;
  const peer = peers.peer(netns, ifindex);
  return peer ? pods.lookup(peer) : null;
}

export class PodResolver {
  private readonly root: string;
  private readonly podLogs: string;
  private readonly max: number;
  private readonly cache = new Map<number, PodRef>();
  /** namespaces with no pod, and when that was found: a drop path asks once per packet */
  private readonly misses = new Map<number, number>();
  private readonly missTtl: number;
  private readonly now: () => number;
  private pods = new Map<string, { namespace: string; pod: string }>();

  constructor(opts: PodResolverOptions = {}) {
    this.root = opts.root ?? '/';
    this.podLogs = opts.podLogs ?? 'var/log/pods';
    this.max = opts.max ?? 4096;
    this.missTtl = opts.missTtlMs ?? 5000;
    this.now = opts.now ?? Date.now;
  }

  private refreshPods(): void {
    try {
      const dir = this.podLogs.startsWith('/') ? this.podLogs : join(this.root, this.podLogs);
      this.pods = parsePodLogDirs(readdirSync(dir));
    } catch {
      this.pods = new Map();
    }
  }

  /**
   * The pod of a netns inode, or null (the host, or not a pod). A miss is
   * remembered for missTtlMs, then /proc is scanned again: a pod that starts
   * later is found, and a flood from the host costs one scan, not one per packet.
   */
  lookup(inode: number): PodRef | null {
    if (!inode) return null;
    const hit = this.cache.get(inode);
    if (hit) return hit;
    const missed = this.misses.get(inode);
    if (missed !== undefined && this.now() - missed < this.missTtl) return null;
    const ref = this.resolve(inode);
    if (ref) {
      if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(inode, ref);
      this.misses.delete(inode);
    } else {
      if (this.misses.size >= this.max) this.misses.delete(this.misses.keys().next().value!);
      this.misses.set(inode, this.now());
    }
    return ref;
  }

  private hostInode: number | null | undefined;

  /** Whether this is the node's own namespace (that of PID 1); null when unknown. */
  isHost(inode: number): boolean | null {
    if (this.hostInode === undefined) {
      try {
        this.hostInode = Number(/\[(\d+)\]/.exec(readlinkSync(join(this.root, 'proc', '1', 'ns', 'net')))![1]);
      } catch {
        this.hostInode = null;
      }
    }
    return this.hostInode === null ? null : inode === this.hostInode;
  }

  /** The pod a cgroup path belongs to (a process's, or a socket's cgroup v2), or null. */
  ofCgroup(path: string): PodRef | null {
    const parsed = parsePodCgroup(path);
    if (!parsed) return null;
    let names = this.pods.get(parsed.uid);
    if (!names) {
      this.refreshPods();
      names = this.pods.get(parsed.uid);
    }
    return { namespace: names?.namespace ?? null, pod: names?.pod ?? null, uid: parsed.uid, container: parsed.container, runtime: parsed.runtime };
  }

  private resolve(inode: number): PodRef | null {
    const proc = join(this.root, 'proc');
    let pids: string[];
    try {
      pids = readdirSync(proc).filter((p) => /^\d+$/.test(p));
    } catch {
      return null;
    }
    let best: PodRef | null = null;
    let bestScore = -1;
    for (const pid of pids) {
      try {
        if (readlinkSync(join(proc, pid, 'ns', 'net')) !== `net:[${inode}]`) continue;
        for (const line of readFileSync(join(proc, pid, 'cgroup'), 'utf8').split('\n')) {
          const ref = this.ofCgroup(line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1));
          if (!ref) continue;
          // every process of a pod shares its netns: prefer an application container over
          // the sandbox (its process is "pause") and over a pod-level cgroup
          let comm = '';
          try {
            comm = readFileSync(join(proc, pid, 'comm'), 'utf8').trim();
          } catch {
            // comm unreadable: rank it as an application process
          }
          const score = (ref.container ? 2 : 0) + (comm === 'pause' ? 0 : 1);
          if (!best || score > bestScore) {
            best = ref;
            bestScore = score;
          }
          break;
        }
      } catch {
        // the process went away, or is not ours to read
      }
    }
    return best;
  }
}
