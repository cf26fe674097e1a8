/**
 * Network namespaces: `NetnsShell` runs a command inside the namespace a drop happened in;
 * SNMP/netstat, softnet_stat and listening sockets as they print them; interface names and
 * veth peers, asked from the namespace. Parsers are pure.
 */
import { execFile, spawnSync } from 'node:child_process';
import { MAX_NAMESPACES } from '../model/interfaces.js';
import { readFile } from 'node:fs/promises';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** /proc/net/snmp or /proc/net/netstat: "Group:Field" → value. */
export function parseSnmp(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const h = lines[i].split(/\s+/);
    const v = lines[i + 1].split(/\s+/);
    if (!h[0]?.endsWith(':') || h[0] !== v[0] || Number.isNaN(Number(v[1]))) continue;
    const group = h[0].slice(0, -1);
    for (let j = 1; j < h.length && j < v.length; j++) out.set(`${group}:${h[j]}`, Number(v[j]));
    i++;
  }
  return out;
}

/** Counters that moved, largest first. */
export function movedCounters(before: Map<string, number>, after: Map<string, number>, only?: RegExp): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0 && (!only || only.test(k))) out.push([k, d]);
  }
  return out.sort((a, b) => b[1] - a[1]);
}

/** Total of the second column (dropped) of /proc/net/softnet_stat, per CPU. */
export function parseSoftnetDrops(text: string): number[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => parseInt(l.trim().split(/\s+/)[1] ?? '0', 16));
}

/** Local addresses of listening sockets from `ss -lnH` output. */
export function parseListeners(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map((f) => (/^\d+$/.test(f[1]) ? f[3] : f[4]) ?? '')
    .filter(Boolean);
}

/**
 * Listening TCP sockets whose accept queue is full, from `ss -ltnH`: for a listener, Recv-Q is
 * the connections waiting for accept() and Send-Q the backlog.
 */
export function parseFullListeners(text: string): Array<{ local: string; queued: number; backlog: number }> {
  const out: Array<{ local: string; queued: number; backlog: number }> = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // "LISTEN 2 1 0.0.0.0:2483 0.0.0.0:*" (state first), or without the state column
    const at = /^\d+$/.test(f[1] ?? '') && /^\d+$/.test(f[2] ?? '') ? 1 : /^\d+$/.test(f[0] ?? '') ? 0 : -1;
    if (at < 0 || f.length < at + 3) continue;
    const queued = Number(f[at]);
    const backlog = Number(f[at + 1]);
    if (queued > backlog) out.push({ local: f[at + 2], queued, backlog });
  }
  return out;
}

/** `ip -o link show` → ifindex → name ("veth1@if3" becomes "veth1"). */
export function parseIpLink(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):\s+([^:@\s]+)(?:@\S+)?:/.exec(line);
    if (m) out.set(Number(m[1]), m[2]);
  }
  return out;
}

/** The asker of model/interfaces.ts's InterfaceNames: every interface of a namespace, from `ip -o link show` there. */
export function askInterfaces(names: () => Map<number, string>): (netns: number) => Map<number, string> | null {
  return (netns) => {
    const out = new NetnsShell(netns, names()).run(['ip', '-o', 'link', 'show']);
    return out ? parseIpLink(out) : null;
  };
}

/**
 * `ip -o -d link show` → ifindex → the namespace its veth peer lives in, as
 * iproute2 names it ("link-netns NAME") or numbers it ("link-netnsid N").
 */
export function parseVethPeers(text: string): Map<number, { name?: string; nsid?: number }> {
  const out = new Map<number, { name?: string; nsid?: number }>();
  for (const line of text.split('\n')) {
    const idx = /^(\d+):/.exec(line);
    if (!idx || !/\bveth\b/.test(line)) continue;
    const named = /\blink-netns (\S+)/.exec(line);
    const id = /\blink-netnsid (\d+)/.exec(line);
    if (named) out.set(Number(idx[1]), { name: named[1] });
    else if (id) out.set(Number(idx[1]), { nsid: Number(id[1]) });
  }
  return out;
}

/** `ip netns list-id` → nsid → name. */
export function parseNsids(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of text.matchAll(/nsid (\d+) \(iproute2 netns name: (\S+)\)/g)) out.set(Number(m[1]), m[2]);
  return out;
}

/**
 * The namespace at the other end of a veth: a drop on a pod's host-side veth
 * belongs to that pod. Asked once per namespace, again on a miss.
 */
export class VethPeers {
  private readonly byNetns = new Map<number, Map<number, number | null>>();
  constructor(private readonly names: () => Map<number, string>) {}

  forget(netns: number): void {
    this.byNetns.delete(netns);
  }

  peer(netns: number, ifindex: number): number | null {
    if (!ifindex) return null;
    let m = this.byNetns.get(netns);
    if (!m || !m.has(ifindex)) {
      if (!m && this.byNetns.size >= MAX_NAMESPACES) this.byNetns.clear();
      const names = this.names();
      const byName = new Map([...names].map(([ino, n]) => [n, ino]));
      const sh = new NetnsShell(netns, names);
      const links = parseVethPeers(sh.run(['ip', '-o', '-d', 'link', 'show']) ?? '');
      const needIds = [...links.values()].some((p) => p.nsid !== undefined);
      const ids = needIds ? parseNsids(sh.run(['ip', 'netns', 'list-id']) ?? '') : new Map<number, string>();
      m = new Map();
      for (const [ifi, p] of links) {
        const name = p.name ?? (p.nsid !== undefined ? ids.get(p.nsid) : undefined);
        m.set(ifi, name ? (byName.get(name) ?? null) : null);
      }
      if (!m.has(ifindex)) m.set(ifindex, null);
      this.byNetns.set(netns, m);
    }
    return m.get(ifindex) ?? null;
  }
}

/** Runs commands in a network namespace given by inode. */
export class NetnsShell {
  readonly label: string;
  private readonly prefix: string[] | null;

  constructor(
    readonly inode: number,
    names: Map<number, string>,
  ) {
    const own = ownNetns();
    const name = names.get(inode);
    if (inode === own || inode === 0) {
      this.prefix = [];
      this.label = 'this namespace';
    } else if (name) {
      this.prefix = ['ip', 'netns', 'exec', name];
      this.label = name;
    } else {
      const pid = pidInNetns(inode);
      this.prefix = pid ? ['nsenter', '-t', String(pid), '-n'] : null;
      this.label = pid ? `netns ${inode} (pid ${pid})` : `netns ${inode}`;
    }
  }

  get reachable(): boolean {
    return this.prefix !== null;
  }

  /** The prefix a person would type to run a command there. */
  get commandPrefix(): string {
    return this.prefix && this.prefix.length ? this.prefix.join(' ') + ' ' : '';
  }

  run(cmd: string[]): string | null {
    const r = this.exec(cmd);
    return r?.status === 0 ? r.stdout : null;
  }

  /** Runs a command whose failure says something (`ip route get` answers with an error): status, stdout and stderr. */
  exec(cmd: string[]): { status: number | null; stdout: string; stderr: string } | null {
    if (!this.prefix) return null;
    const argv = [...this.prefix, ...cmd];
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 5000 });
    return r.error ? null : { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  read(path: string): string | null {
    if (this.prefix && this.prefix.length === 0) {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return null;
      }
    }
    return this.run(['cat', path]);
  }

  /** run(), without blocking: a window's reads in many namespaces go out at once. */
  async runAsync(cmd: string[]): Promise<string | null> {
    const r = await this.execAsync(cmd);
    return r?.status === 0 ? r.stdout : null;
  }

  /** exec(), without blocking. */
  execAsync(cmd: string[]): Promise<{ status: number | null; stdout: string; stderr: string } | null> {
    return new Promise((resolve) => {
      if (!this.prefix) return resolve(null);
      const argv = [...this.prefix, ...cmd];
      execFile(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 5000, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
        // a number is the command's exit status; anything else (ENOENT, a timeout) is no answer
        if (err && typeof err.code !== 'number') resolve(null);
        else resolve({ status: err ? (err.code as number) : 0, stdout, stderr });
      });
    });
  }

  /** read(), without blocking. */
  async readAsync(path: string): Promise<string | null> {
    if (this.prefix && this.prefix.length === 0) return readFile(path, 'utf8').catch(() => null);
    return this.runAsync(['cat', path]);
  }
}

export function ownNetns(): number {
  try {
    return Number(/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))![1]);
  } catch {
    return -1;
  }
}

/** A process living in the namespace, to nsenter it when it has no name. */
export function pidInNetns(inode: number): number | null {
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return null;
  }
  for (const p of pids) {
    try {
      if (readlinkSync(`/proc/${p}/ns/net`) === `net:[${inode}]`) return Number(p);
    } catch {
      // gone, or not ours to read
    }
  }
  return null;
}

/** Inode → name of the namespaces `ip netns` knows (/run/netns). */
export function netnsNames(dir = '/run/netns'): Map<number, string> {
  const out = new Map<number, string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      out.set(Number(statSync(`${dir}/${n}`).ino), n);
    } catch {
      // deleted meanwhile
    }
  }
  return out;
}
