/**
 * Every fault of the Flannel-style lab (scripts/lab), diagnosed for real:
 * inject, run the fault's traffic while `droptrace diagnose` watches, check
 * the top finding (function or reason, interface, flow, hint, evidence);
 * clear, and check the finding is gone. Then `lab down` leaves nothing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, start } from './helpers/cli.js';
import { ourProgramsSettled } from './helpers/netns.js';

const canRun = process.getuid?.() === 0 && existsSync('/sys/kernel/btf/vmlinux');
if (!canRun) console.warn('skipping lab tests: they need root and /sys/kernel/btf/vmlinux');

const PREFIX = `dl${process.pid % 100000}`;
const LAB = join(ROOT, 'scripts', 'lab');
const env = { ...process.env, DT_LAB_PREFIX: PREFIX, NODE: process.execPath };
const lab = (...args: string[]) => {
  const r = spawnSync(LAB, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lab ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const nsList = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`${PREFIX}-`));
const rootLinks = () => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout.trim().split('\n').length;

interface Finding {
  function: string | null;
  reason: string | null;
  interfaces: string[];
  netns: { label: string };
  flows: Array<{ flow: string }>;
  hint: { id: string } | null;
  evidence: Array<{ verdict: string; text: string }>;
}

/** Runs diagnose with filters while the fault's traffic flows; returns its findings. */
async function diagnose(fault: string, filters: string[]): Promise<Finding[]> {
  const t = start(['diagnose', '--json', '--duration', '4', ...filters]);
  await t.ready();
  lab('traffic', fault);
  const res = await t.exited;
  if (res.code !== 0) throw new Error(`diagnose exited ${res.code}: ${res.stderr}`);
  return JSON.parse(res.stdout).findings as Finding[];
}

const A = `${PREFIX}-hostA`;
const B = `${PREFIX}-hostB`;

const CASES: Array<{
  fault: string;
  filters: string[];
  reason: string;
  fn: RegExp;
  iface: string;
  ns: string;
  flow: string;
  hint: string;
  evidence?: RegExp;
}> = [
  { fault: 'input-drop', filters: ['--port', '2483'], reason: 'NETFILTER_DROP', fn: /^(nft_do_chain|nf_hook_slow)/, iface: 'cni0', ns: A, flow: 'TCP 10.244.1.2 > 10.244.1.1:2483', hint: 'reason/NETFILTER_DROP', evidence: /-A INPUT .*--dport 2483 .*-j DROP counted \d+ packet/ },
  { fault: 'forward-drop', filters: ['--port', '2483'], reason: 'NETFILTER_DROP', fn: /^(nft_do_chain|nf_hook_slow)/, iface: 'cni0', ns: B, flow: 'TCP 10.244.2.2 > 192.168.1.10:2483', hint: 'reason/NETFILTER_DROP', evidence: /policy FORWARD DROP counted \d+ packet/ },
  { fault: 'vxlan-blocked', filters: ['--port', '8472'], reason: 'NETFILTER_DROP', fn: /^(nft_do_chain|nf_hook_slow)/, iface: 'eth0', ns: A, flow: 'UDP 192.168.1.11 > 192.168.1.10:8472', hint: 'reason/NETFILTER_DROP', evidence: /--dport 8472 .*-j DROP counted/ },
  { fault: 'loopback-bind', filters: ['--port', '2483', '--reason', 'NO_SOCKET'], reason: 'NO_SOCKET', fn: /^tcp_v4_rcv/, iface: 'cni0', ns: A, flow: 'TCP 10.244.1.2 > 10.244.1.1:2483', hint: 'reason/NO_SOCKET', evidence: /bound only to 127\.0\.0\.1:2483/ },
  { fault: 'rp-filter', filters: ['--port', '2483'], reason: 'IP_RPFILTER', fn: /^ip_rcv_finish/, iface: 'eth0', ns: A, flow: 'TCP 10.244.2.2 > 192.168.1.10:2483', hint: 'reason/IP_RPFILTER', evidence: /leaves via flannel\.1, not eth0/ },
  { fault: 'mtu', filters: ['--netns', A, '--port', '7000'], reason: 'PKT_TOO_BIG', fn: /^ip_forward/, iface: 'cni0', ns: A, flow: 'UDP 10.244.1.2 > 10.244.2.2:7000', hint: 'reason/PKT_TOO_BIG' },
  { fault: 'no-route', filters: ['--netns', A, '--port', '7000'], reason: 'IP_INNOROUTES', fn: /^ip_error/, iface: 'cni0', ns: A, flow: 'UDP 10.244.1.2 > 10.244.9.9:7000', hint: 'reason/IP_INNOROUTES', evidence: /has no route to 10\.244\.9\.9/ },
];

describe.skipIf(!canRun)('the fault lab, diagnosed', () => {
  let linksBefore = 0;
  beforeAll(() => {
    lab('down');
    linksBefore = rootLinks();
    lab('up');
  });
  afterAll(() => {
    spawnSync(LAB, ['down'], { env });
  });

  it.each(CASES)('$fault: the top finding is $reason on $iface, and it goes away when cleared', async (c) => {
    lab('fault', c.fault);
    let findings: Finding[];
    try {
      findings = await diagnose(c.fault, c.filters);
    } finally {
      lab('clear');
    }
    expect(findings.length).toBeGreaterThan(0);
    const top = findings[0];
    expect(top.reason).toBe(c.reason);
    expect(top.function).toMatch(c.fn);
    expect(top.interfaces[0]).toBe(c.iface);
    expect(top.netns.label).toContain(`(${c.ns})`);
    expect(top.flows.map((f) => f.flow)).toContain(c.flow);
    expect(top.hint?.id).toBe(c.hint);
    if (c.evidence) expect(top.evidence.filter((e) => e.verdict === 'confirms').map((e) => e.text).join('\n')).toMatch(c.evidence);

    const after = await diagnose(c.fault, c.filters);
    expect(after.filter((f) => f.reason === c.reason && f.netns.label.includes(`(${c.ns})`))).toEqual([]);
  });

  it('lab down leaves no namespace, link, process or program behind', async () => {
    lab('down');
    expect(nsList()).toEqual([]);
    expect(rootLinks()).toBe(linksBefore);
    expect(spawnSync('pgrep', ['-f', 'droptrace lab'], { encoding: 'utf8' }).stdout.trim()).toBe('');
    expect(await ourProgramsSettled()).toEqual([]);
    lab('down'); // idempotent
  });
});
