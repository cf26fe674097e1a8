import { describe, expect, it } from 'vitest';
import { buildFilters, describeFilters, FILTER_FLAGS, parseFilterArgs, parseHost, resolveNetns, UsageError } from './filters.js';
import { ReasonTable } from '../model/reasons.js';

const reasons = new ReasonTable([[3, 'NO_SOCKET'], [12, 'NETFILTER_DROP'], [16, 'IP_RPFILTER']], 'btf');

describe('parseHost', () => {
  it.each([
    ['10.244.1.2', 4, '0af40102', 'ffffffff'],
    ['10.244.0.0/16', 4, '0af40000', 'ffff0000'],
    ['10.244.7.9/16', 4, '0af40000', 'ffff0000'],
    ['10.0.0.1/0', 4, '00000000', '00000000'],
    ['10.1.2.3/20', 4, '0a010000', 'fffff000'],
    ['fd00::1', 6, 'fd000000000000000000000000000001', 'ffffffffffffffffffffffffffffffff'],
    ['2001:db8::/32', 6, '20010db8000000000000000000000000', 'ffffffff000000000000000000000000'],
    ['::ffff:10.0.0.1', 6, '00000000000000000000ffff0a000001', 'ffffffffffffffffffffffffffffffff'],
  ])('%s', (text, version, addr, mask) => {
    const h = parseHost(text);
    expect(h.version).toBe(version);
    const n = version === 4 ? 4 : 16;
    expect(h.addr.subarray(0, n).toString('hex')).toBe(addr);
    expect(h.mask.subarray(0, n).toString('hex')).toBe(mask);
  });

  it.each(['10.0.0', '10.0.0.1/33', 'fd00::/129', 'host.example', '10.0.0.1/8/8', '10.0.0.1/x'])('rejects %s', (text) => {
    expect(() => parseHost(text)).toThrow(UsageError);
  });
});

describe('resolveNetns', () => {
  const stat = (p: string) => {
    if (p === '/run/netns/pod1') return { ino: 4026532999 };
    if (p === '/proc/42/ns/net') return { ino: 4026531840n };
    throw new Error('ENOENT');
  };
  it.each([
    ['4026532111', 4026532111],
    ['net:[4026532112]', 4026532112],
    ['pod1', 4026532999],
    ['/proc/42/ns/net', 4026531840],
  ])('%s → %i', (text, ino) => {
    expect(resolveNetns(text, stat)).toBe(ino);
  });
  it('explains what it accepts when the name does not exist', () => {
    expect(() => resolveNetns('nope', stat)).toThrow(/ip netns list/);
  });
});

describe('buildFilters', () => {
  it.each([
    [{ proto: 'tcp' }, { l4proto: 6 }],
    [{ proto: 'UDP' }, { l4proto: 17 }],
    [{ proto: 'icmp6' }, { l4proto: 58 }],
    [{ proto: 'arp' }, { ethertype: 0x0806 }],
    [{ proto: '132' }, { l4proto: 132 }],
    [{ port: '2483' }, { port: 2483 }],
    [{ iface: 'cni0' }, { ifname: 'cni0' }],
    [{ reason: ['NETFILTER_DROP', 'no_socket'] }, { include: [12, 3] }],
    [{ reason: ['NETFILTER_DROP,IP_RPFILTER'] }, { include: [12, 16] }],
    [{ excludeReason: ['NO_SOCKET'] }, { exclude: [3] }],
  ])('%j', (opts, expected) => {
    expect(buildFilters(opts, reasons)).toMatchObject(expected);
  });

  it.each([
    [{ proto: 'bogus' }, /--proto bogus/],
    [{ port: '0' }, /--port 0/],
    [{ port: '70000' }, /--port 70000/],
    [{ iface: 'a-very-long-interface-name' }, /at most 15/],
    [{ reason: ['NETFILTER'] }, /did you mean NETFILTER_DROP/],
  ])('rejects %j', (opts, message) => {
    expect(() => buildFilters(opts, reasons)).toThrow(message);
  });
});

describe('subsystem reasons in the in-kernel filter', () => {
  const reasons = new ReasonTable([[2, 'NOT_SPECIFIED'], [0x20001, 'OVS_DROP_LAST_ACTION']], 'btf', [[2, 'OPENVSWITCH']]);

  it('go into the list next to the core bitmap, by name or SUBSYS:code', () => {
    expect(buildFilters({ reason: ['OVS_DROP_LAST_ACTION,OPENVSWITCH:7', 'NOT_SPECIFIED'] }, reasons).include).toEqual([0x20001, 0x20007, 2]);
  });

  it('at most 8 of them in one list, said in one sentence', () => {
    const many = Array.from({ length: 9 }, (_, i) => `OPENVSWITCH:${i + 1}`);
    expect(() => buildFilters({ reason: many }, reasons)).toThrow(/at most 8 subsystem reasons/);
  });
});

describe('the filter flags, declared once', () => {
  const reasons = new ReasonTable([[2, 'NOT_SPECIFIED'], [3, 'NO_SOCKET'], [12, 'NETFILTER_DROP']], 'btf');
  const sample: Record<string, string> = { '--netns': '4026531840', '--iface': 'cni0', '--proto': 'udp', '--host': '10.0.0.0/8', '--port': '2483', '--reason': 'NO_SOCKET', '--exclude-reason': 'NOT_SPECIFIED' };

  it('every flag is typed at runtime as on the command line, described, and applied', () => {
    expect(FILTER_FLAGS.map((f) => f.flag).sort()).toEqual(Object.keys(sample).sort());
    const text = FILTER_FLAGS.map((f) => `${f.flag} ${sample[f.flag]}`).join(' ');
    const opts = parseFilterArgs(text);
    expect(opts).toEqual({ netns: '4026531840', iface: 'cni0', proto: 'udp', host: '10.0.0.0/8', port: '2483', reason: ['NO_SOCKET'], excludeReason: ['NOT_SPECIFIED'] });
    expect(describeFilters(opts)).toBe('netns 4026531840, iface cni0, proto udp, host 10.0.0.0/8, port 2483, reason NO_SOCKET, not NOT_SPECIFIED');
    const cfg = buildFilters(opts, reasons);
    expect(cfg).toMatchObject({ netns: 4026531840, ifname: 'cni0', l4proto: 17, hostVersion: 4, port: 2483, include: [3], exclude: [2] });
  });

  it('a list flag repeats, and a flag that is not a filter names the ones that are', () => {
    expect(parseFilterArgs('--reason NO_SOCKET --reason=NETFILTER_DROP').reason).toEqual(['NO_SOCKET', 'NETFILTER_DROP']);
    expect(() => parseFilterArgs('--prot 2483')).toThrow(/--prot: not a filter \(use --netns, --iface, --proto, --host, --port, --reason, --exclude-reason\)/);
    expect(() => parseFilterArgs('--port')).toThrow(/--port: needs a value/);
  });
});
