/**
 * Network namespaces for kernel tests. Every name carries this process's
 * pid, every namespace is deleted by destroy() (call it in afterAll/finally),
 * and nothing is configured in the root namespace.
 */
import { execFileSync, spawnSync } from 'node:child_process';

let seq = 0;

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export class Lab {
  private readonly names: string[] = [];
  readonly tag = `dt${process.pid}x${seq++}`;

  /** Creates a namespace with lo up; returns its name. */
  netns(short: string): string {
    const name = `${this.tag}-${short}${this.names.length}`;
    sh('ip', ['netns', 'add', name]);
    this.names.push(name);
    this.exec(name, 'ip', ['link', 'set', 'lo', 'up']);
    return name;
  }

  /** The namespaces this lab made and has not removed. */
  namespaces(): readonly string[] {
    return this.names;
  }

  exec(ns: string, cmd: string, args: string[]): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Runs a bash snippet inside a namespace; returns its status, never throws. */
  bash(ns: string, script: string): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'bash', '-c', script], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** A veth pair with one end in each namespace (names ≤ 15 characters). */
  veth(nsA: string, ifA: string, nsB: string, ifB: string): void {
    const tmpA = `v${process.pid % 100000}a${seq}`;
    const tmpB = `v${process.pid % 100000}b${seq++}`;
    // created inside nsA so that no interface ever appears in the root namespace
    this.exec(nsA, 'ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB, 'netns', nsB]);
    this.exec(nsA, 'ip', ['link', 'set', tmpA, 'name', ifA]);
    this.exec(nsB, 'ip', ['link', 'set', tmpB, 'name', ifB]);
    this.exec(nsA, 'ip', ['link', 'set', ifA, 'up']);
    this.exec(nsB, 'ip', ['link', 'set', ifB, 'up']);
  }

  /** Sends n UDP datagrams from inside ns to addr:port (each via bash's /dev/udp). */
  udp(ns: string, addr: string, port: number, n: number): void {
    const r = this.bash(ns, `for i in $(seq ${n}); do echo drop > /dev/udp/${addr}/${port}; done`);
    if (r.status !== 0) throw new Error(`udp sender failed: ${r.stderr}`);
  }

  /** A counter from /proc/net/snmp as seen inside ns, e.g. ('Udp', 'NoPorts'). */
  snmp(ns: string, group: string, field: string): number {
    const lines = this.exec(ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith(`${group}:`));
    const names = lines[0].split(/\s+/);
    const values = lines[1].split(/\s+/);
    return Number(values[names.indexOf(field)]);
  }

  /** Deletes one namespace this lab made (a pod going away). */
  remove(name: string): void {
    const i = this.names.indexOf(name);
    if (i >= 0) this.names.splice(i, 1);
    spawnSync('ip', ['netns', 'del', name]);
  }

  /** Deletes every namespace this lab made (and with them their interfaces). Idempotent. */
  destroy(): void {
    for (const name of this.names.splice(0)) {
      spawnSync('ip', ['netns', 'del', name]);
    }
  }
}

/**
 * Loaded BPF programs whose name says they are ours. A program is freed an
 * RCU grace period after its last fd closes, so wait for that (bounded).
 */
export async function ourProgramsSettled(timeoutMs = 5000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  let progs = ourPrograms();
  while (progs.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    progs = ourPrograms();
  }
  return progs;
}

/** IDs of loaded BPF programs whose name says they are ours, right now. */
export function ourPrograms(): string[] {
  const r = spawnSync('bpftool', ['prog', 'show'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => /droptrace_/.test(l));
}

export function ourLinks(): string[] {
  const ids = ourPrograms().map((l) => l.split(':')[0].trim());
  const r = spawnSync('bpftool', ['link', 'show'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => ids.some((id) => new RegExp(`prog ${id}\\b`).test(l)));
}
