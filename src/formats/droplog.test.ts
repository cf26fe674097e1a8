import { describe, expect, it } from 'vitest';
import { parseLine, parseLocation } from './droplog.js';

describe('parseLine recognises every drop-log format', () => {
  it.each([
    // [line, expected subset]
    ['3 drops at location 0xffffffff82046f4c', { kind: 'dropwatch', count: 3, address: 0xffffffff82046f4cn, name: null }],
    ['2 drops at __udp4_lib_rcv+4bc (0xffffffff82046f4c) [software]', { kind: 'dropwatch', count: 2, name: '__udp4_lib_rcv', offset: 0x4bc, address: 0xffffffff82046f4cn }],
    ['12 drops at ip_rcv+cf (0xffffffff81631acf)', { kind: 'dropwatch', count: 12, name: 'ip_rcv', offset: 0xcf }],
    ['    5 drops at ip6_mc_input+15e (0xffffffff820d96ae) [software]', { kind: 'dropwatch', count: 5 }],
    ['# 4 drops at ip_rcv_finish_core+25b (0xffffffff81ff5acb) [software]', { kind: 'chatter' }],
    ['2 drops at __udp4_lib_rcv+4bc (0xffffffff8204', { kind: 'dropwatch', name: '__udp4_lib_rcv', offset: 0x4bc, address: null, text: '__udp4_lib_rcv+4bc' }],
    ['it showed 95255 drops at skb_release_data+b1 (0xffffffff816ea931) [software] [ns: 4026531840] # overnight', { kind: 'dropwatch', count: 95255, text: 'skb_release_data+b1', netns: 4026531840 }],
    ['51 packets dropped at location 0xffffffff8024cd0f', { kind: 'stap', count: 51, address: 0xffffffff8024cd0fn }],
    ['3 packets dropped at unix_stream_recvmsg', { kind: 'stap', count: 3, name: 'unix_stream_recvmsg', offset: 0 }],
    ['  nc 311 [000] 10.5: skb:kfree_skb: skbaddr=0xffff8800 protocol=2048 location=18446744071595913036', { kind: 'perf', address: 0xffffffff82046f4cn }],
    ['        ffffffff816ea931 skb_release_data+0xb1 ([kernel.kallsyms])', { kind: 'frame', name: 'skb_release_data', offset: 0xb1, address: 0xffffffff816ea931n }],
    [' => ip_do_fragment+0x5c9/0x8d0', { kind: 'frame', name: 'ip_do_fragment', offset: 0x5c9 }],
    ['        kfree_skb_reason+1', { kind: 'frame', name: 'kfree_skb_reason', offset: 1 }],
    ['  <idle>-0 [001] ..s1. 12.3: <stack trace>', { kind: 'chatter', stack: true }],
    ['dropwatch> start', { kind: 'chatter' }],
    ['root@node:~# dropwatch -l kas', { kind: 'chatter' }],
    ['Kernel monitoring activated.', { kind: 'chatter' }],
    ['^CGot a stop message', { kind: 'chatter' }],
    ['', { kind: 'chatter' }],
    ['1 drops at nft_do_chain+3e8 (0xffffffff81f63638) [software]^CGot a stop message', { kind: 'dropwatch', count: 1, name: 'nft_do_chain' }],
    ['^C6 drops at location 0xffffffff81f63638', { kind: 'dropwatch', count: 6, address: 0xffffffff81f63638n }],
    ['7 drops at ttl_value_is_too_small [hardware]', { kind: 'dropwatch', count: 7, name: 'ttl_value_is_too_small', hardware: true }],
    ['3 drops at __brk_limit+36c27a68 (0xffffffffc0a01010)', { kind: 'dropwatch', name: '__brk_limit', offset: 0x36c27a68 }],
    ['2 drops at ip_rcv+cf (0xffffffff81631acf) [software]\r', { kind: 'dropwatch', count: 2, offset: 0xcf }],
    ['drop at: nft_do_chain+0x3e8/0x610 (0xffffffff81f63638)', { kind: 'dropwatch-packet', name: 'nft_do_chain', offset: 0x3e8, address: 0xffffffff81f63638n }],
    ['drop at: do_execute_actions+0x197/0xb20 [openvsw (0xffffffffc0db6f97)', { kind: 'dropwatch-packet', module: 'openvsw', address: 0xffffffffc0db6f97n }],
    ['drop at: ttl_value_is_too_small (l3_drops)', { kind: 'dropwatch-packet', hardware: true, module: 'l3_drops' }],
    ['drop reason: NETFILTER_DROP', { kind: 'dropwatch-field', field: 'drop reason', value: 'NETFILTER_DROP' }],
    ['input port ifindex: 2', { kind: 'dropwatch-field', field: 'input port ifindex', value: '2' }],
    [
      '            bash  8153 [001]  1112.813971: skb:kfree_skb: skbaddr=0xffff88810b23a0e0 rx_sk=(nil) protocol=2048 location=0xffffffff81f63638 reason: NETFILTER_DROP',
      { kind: 'perf', address: 0xffffffff81f63638n, reason: 'NETFILTER_DROP' },
    ],
    [
      ' kworker/0:1-vir    11 [000]  1112.592567: skb:kfree_skb: skbaddr=0xffff888102556600 rx_sk=(nil) protocol=34525 location=ip6_mc_input+0x15e reason: NOT_SPECIFIED',
      { kind: 'perf', name: 'ip6_mc_input', offset: 0x15e, address: null },
    ],
    ['  swapper 0 [000] 99.1: skb:kfree_skb: skbaddr=0xc5a1b2c0 protocol=2048 location=0xc1634a1f', { kind: 'perf', address: 0xc1634a1fn, reason: null }],
    [
      '            bash-8085    [000] ..s1.  1102.460040: kfree_skb: skbaddr=00000000cdf5d6a6 rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET',
      { kind: 'ftrace', name: '__udp4_lib_rcv', offset: 0x4bc, reason: 'NO_SOCKET' },
    ],
    ['  <idle>-0 [001] ..s. 12.3: kfree_skb: skbaddr=000000004a2f5e7c protocol=2048 location=000000009b2c1f3a', { kind: 'ftrace', hashed: true, address: null }],
    ['0xffffffff81f63638', { kind: 'address', address: 0xffffffff81f63638n }],
    ['ffffffff81f63638', { kind: 'address', address: 0xffffffff81f63638n }],
  ])('%s', (line, expected) => {
    expect(parseLine(line)).toMatchObject(expected);
  });

  it.each([
    ['\u0000\u00ff\u00fe garbage \u0007'],
    ['we saw 2 drops at the end of the day'],
    ['x'.repeat(10_000)],
    ['drops at the end of the rainbow'],
  ])('passes %j through as unrecognised', (line) => {
    expect(parseLine(line)).toBeNull();
  });
});

describe('parseLocation', () => {
  it.each([
    ['0xffffffff81f63638', { address: 0xffffffff81f63638n, hashed: false }],
    ['ffffffff81f63638', { address: 0xffffffff81f63638n }],
    ['000000009b2c1f3a', { hashed: true, address: null }],
    ['tcp_v4_rcv+0x1a/0x2e0', { name: 'tcp_v4_rcv', offset: 0x1a }],
    ['tcp_v4_rcv.cold+0x5', { name: 'tcp_v4_rcv.cold', offset: 5 }],
  ])('%s', (token, expected) => {
    expect(parseLocation(token)).toMatchObject(expected);
  });
});

describe('droptrace live --plain lines read back as dropwatch lines', () => {
  it.each([
    ['12 drops at nft_do_chain+0x3e8 (0xffffffff81f63638) [NETFILTER_DROP] cni0', { count: 12, name: 'nft_do_chain', offset: 0x3e8, reason: 'NETFILTER_DROP', iface: 'cni0' }],
    ['3 drops at location 0xffffffff81f63638 [NO_SOCKET] lo', { count: 3, address: 0xffffffff81f63638n, reason: 'NO_SOCKET', iface: 'lo' }],
    ['3 drops at location 0xffffffff81f63638 [NO_SOCKET]', { count: 3, reason: 'NO_SOCKET', iface: null }],
    ['2 drops at ip_rcv+cf (0xffffffff81631acf) [software]', { count: 2, reason: null }],
  ])('%s', (line, expected) => {
    expect(parseLine(line)).toMatchObject(expected);
  });
});
