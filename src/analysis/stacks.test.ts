import { describe, expect, it } from 'vitest';
import { EV } from '../model/decode.js';
import { SymbolTable } from '../model/kallsyms.js';
import { eventRecord as event } from '../../test/helpers/events.js';
import { callerOf, StackCounts } from './stacks.js';

const syms = SymbolTable.parse(
  [
    'ffffffff81000000 T bpf_trace_run4',
    'ffffffff81001000 T sk_skb_reason_drop',
    'ffffffff81002000 T skb_release_data',
    'ffffffff81003000 T kfree_skb_list_reason',
    'ffffffff81004000 T ip_do_fragment',
    'ffffffff81005000 T ip_output',
    'ffffffff81006000 T __udp4_lib_rcv',
    'ffffffff81007000 T next',
  ].join('\n') + '\n',
);
const at = (base: bigint, off: number) => base + BigInt(off);

function withStack(location: bigint, id: number): Buffer {
  const b = event({ location, reason: 2, flags: 4, ipver: 0, l4: 0, sport: 0, dport: 0, tcp: 0, ifname: 'eth0' });
  b.writeInt32LE(id, EV.stack_id);
  return b;
}

describe('kernel stacks per drop site', () => {
  const release = at(0xffffffff81002000n, 0x40);
  const frames = new Map<number, bigint[]>([
    // tracing frames first, then the site, then who freed: two fragment paths through one generic site
    [1, [0xffffffffc0001000n, at(0xffffffff81000000n, 0xfc), at(0xffffffff81001000n, 0x90), release, at(0xffffffff81003000n, 0x20), at(0xffffffff81004000n, 0x100), at(0xffffffff81005000n, 0x10)]],
    [2, [0xffffffffc0002000n, at(0xffffffff81000000n, 0xfc), at(0xffffffff81001000n, 0x90), release, at(0xffffffff81003000n, 0x20), at(0xffffffff81004000n, 0x100), at(0xffffffff81005000n, 0x10)]],
    [3, [at(0xffffffff81001000n, 0x90), at(0xffffffff81006000n, 0x4bc)]],
  ]);
  const counts = new StackCounts();
  const batch = Buffer.concat([withStack(release, 1), withStack(release, 2), withStack(release, 1), withStack(at(0xffffffff81006000n, 0x4bc), 3), withStack(release, -1)]);
  counts.add(batch, batch.length / 5, 5);
  const sites = counts.sites(syms, (id) => frames.get(id) ?? null);

  it('start at the drop site, merge stacks that differ only above it, most drops first', () => {
    expect(sites.map((s) => [s.site, s.total])).toEqual([['skb_release_data+0x40', 3], ['__udp4_lib_rcv+0x4bc', 1]]);
    expect(sites[0].stacks).toEqual([{ count: 3, frames: ['skb_release_data+0x40', 'kfree_skb_list_reason+0x20', 'ip_do_fragment+0x100', 'ip_output+0x10'] }]);
  });

  it('a generic free function is named by its caller; a specific site has none', () => {
    expect(sites[0].callers).toEqual([{ function: 'ip_do_fragment', count: 3 }]);
    expect(sites[1].callers).toEqual([]);
  });

  it('callerOf skips every generic free function and .isra copies of them', () => {
    expect(callerOf(['skb_release_data', 'kfree_skb_list_reason.isra.0', null, 'tcp_v4_rcv'])).toBe('tcp_v4_rcv');
    expect(callerOf(['__kfree_skb', 'consume_skb'])).toBeNull();
  });
});
