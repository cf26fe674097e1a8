import { describe, expect, it } from 'vitest';
import { BENIGN_RULES, benignLine, classify, classifySite, isGroupAddress, isMulticast, type DropShape } from './benign.js';

const shape = (over: Partial<DropShape>): DropShape => ({ reason: null, function: null, ethertype: 0x0800, l4proto: null, daddr: null, dport: null, icmpType: null, ipver: over.ethertype === 0x86dd ? 6 : 4, ...over });

describe('benign drops', () => {
  it.each([
    ['ff02::16', true],
    ['ff05::1:3', true],
    ['fe80::1', false],
    ['ff::1', false], // 00ff::1 is not multicast
    ['fd00::ff', false],
    ['224.0.0.251', true],
    ['239.255.255.250', true],
    ['240.0.0.1', false],
    ['10.244.1.1', false],
    [null, false],
  ])('isMulticast(%s) = %s', (a, want) => {
    // the IP version comes with the address, as it does in a record
    expect(isMulticast(a, a?.includes('.') ? 4 : 6)).toBe(want);
  });

  it('the IPv4 limited broadcast is a group address, a unicast one is not', () => {
    expect(isGroupAddress('255.255.255.255', 4)).toBe(true);
    expect(isGroupAddress('10.244.1.255', 4)).toBe(false); // a subnet broadcast cannot be told from a host without the prefix
  });

  // drops seen on this VM's lab at rest (MLD reports, router solicitations) and the kernel's other always-benign sites
  it.each([
    ['MLD report into ip6_mc_input', shape({ reason: 'NOT_SPECIFIED', function: 'ip6_mc_input', ethertype: 0x86dd, l4proto: 0, daddr: 'ff02::16' }), 'ipv6-multicast-not-joined'],
    ['router solicitation on flannel.1 with no FDB entry', shape({ reason: 'NO_TX_TARGET', function: 'vxlan_xmit', ethertype: 0x86dd, l4proto: 58, daddr: 'ff02::2', icmpType: 133 }), 'tunnel-multicast-no-target'],
    ['fragments of a packet conntrack reassembled and ip_do_fragment sent on', shape({ reason: 'NOT_SPECIFIED', function: 'skb_release_data', l4proto: 17, daddr: '10.244.2.2' }), 'fragments-of-freed-packet'],
    ['frame for another MAC on a bridge port', shape({ reason: 'OTHERHOST', function: 'ip_rcv_core' }), 'other-host'],
    ['NS for an address not ours', shape({ reason: 'IPV6_NDISC_NS_OTHERHOST', function: 'ndisc_rcv', ethertype: 0x86dd }), 'ndisc-for-other-host'],
    ['mDNS nobody listens to', shape({ reason: 'NO_SOCKET', function: '__udp4_lib_mcast_deliver', l4proto: 17, daddr: '224.0.0.251', dport: 5353 }), 'multicast-udp-no-listener'],
    ['DHCP broadcast', shape({ reason: 'NO_SOCKET', function: '__udp4_lib_rcv', l4proto: 17, daddr: '255.255.255.255', dport: 67 }), 'multicast-udp-no-listener'],
    ['IGMP report', shape({ reason: 'NOT_SPECIFIED', function: 'igmp_rcv', l4proto: 2, daddr: '224.0.0.22' }), 'igmp-not-joined'],
    ['LLDP', shape({ reason: 'UNHANDLED_PROTO', function: '__netif_receive_skb_core', ethertype: 0x88cc }), 'unhandled-l2-protocol'],
    ['PAUSE frame', shape({ reason: 'MAC_IEEE_MAC_CONTROL', function: '__netif_receive_skb_core', ethertype: 0x8808 }), 'pause-frames'],
    ['IPv6 on an interface with IPv6 off', shape({ reason: 'IPV6DISABLED', function: 'ipv6_rcv', ethertype: 0x86dd }), 'ipv6-disabled'],
    ["an IGMPv3 report a pod's input routing does not take", shape({ reason: 'NOT_SPECIFIED', function: 'ip_rcv_finish_core', l4proto: 2, daddr: '224.0.0.22' }), 'igmp-not-joined'],
    ['netlink replies purged at socket close (ip, tc, iptables-save)', shape({ reason: 'QUEUE_PURGE', function: 'skb_queue_purge_reason', ethertype: 0, device: false }), 'socket-queue-unread'],
    ['an .isra copy of the function', shape({ reason: 'NO_TX_TARGET', function: 'vxlan_xmit_one.isra.0', daddr: 'ff02::1', ethertype: 0x86dd }), 'tunnel-multicast-no-target'],
  ])('%s → %s', (_name, s, id) => {
    expect(classify(s)?.id).toBe(id);
  });

  // the faults users chase must never be folded away
  it.each([
    ['a firewall rule on the etcd port', shape({ reason: 'NETFILTER_DROP', function: 'nft_do_chain', l4proto: 6, daddr: '10.244.1.1', dport: 2483 })],
    ['VXLAN unicast dropped by a rule', shape({ reason: 'NETFILTER_DROP', function: 'nft_do_chain', l4proto: 17, daddr: '192.168.1.10', dport: 8472 })],
    ['unicast UDP to a closed port', shape({ reason: 'NO_SOCKET', function: '__udp4_lib_rcv', l4proto: 17, daddr: '10.0.0.1', dport: 53 })],
    ['TCP to a closed port', shape({ reason: 'NO_SOCKET', function: 'tcp_v4_rcv', l4proto: 6, daddr: '10.0.0.1', dport: 2483 })],
    ['VXLAN with no FDB entry for a unicast address', shape({ reason: 'NO_TX_TARGET', function: 'vxlan_xmit', l4proto: 6, daddr: '10.244.2.2' })],
    ['IPv4 with no protocol handler', shape({ reason: 'UNHANDLED_PROTO', function: '__netif_receive_skb_core', ethertype: 0x0800 })],
    ['multicast dropped by a firewall rule', shape({ reason: 'NETFILTER_DROP', function: 'nft_do_chain', l4proto: 17, daddr: '224.0.0.251' })],
    ['rp_filter', shape({ reason: 'IP_RPFILTER', function: 'ip_rcv_finish' })],
    ['a full backlog', shape({ reason: 'CPU_BACKLOG', function: 'enqueue_to_backlog' })],
    ['packets purged from a device queue at a reset', shape({ reason: 'QUEUE_PURGE', function: 'skb_queue_purge_reason', ethertype: 0x0800, device: true })],
  ])('%s is not benign', (_name, s) => {
    expect(classify(s)).toBeNull();
  });

  it('a site decides alone only where reason and function say it all', () => {
    expect(classifySite('NOT_SPECIFIED', 'ip6_mc_input')?.id).toBe('ipv6-multicast-not-joined');
    expect(classifySite('OTHERHOST', 'ip_rcv_core')?.id).toBe('other-host');
    // needs the packet: a count alone cannot say whether the destination was a group
    expect(classifySite('NO_TX_TARGET', 'vxlan_xmit')).toBeNull();
    expect(classifySite('NO_SOCKET', '__udp4_lib_rcv')).toBeNull();
  });

  it('every rule has an id, a title and a reason of its own', () => {
    expect(new Set(BENIGN_RULES.map((r) => r.id)).size).toBe(BENIGN_RULES.length);
    for (const r of BENIGN_RULES) expect(r.title.length && r.why.length).toBeTruthy();
  });

  it('folds into one countable line', () => {
    expect(benignLine([])).toBeNull();
    expect(
      benignLine([
        { rule: 'a', title: 'IPv6 multicast to groups nobody joined', total: 31, interfaces: [{ key: 'eth0' }, { key: 'cni0' }] },
        { rule: 'b', title: 'multicast with no VXLAN entry', total: 10, interfaces: [{ key: 'flannel.1' }, { key: 'eth0' }] },
      ]),
    ).toBe('41 drops of expected noise on 3 interfaces (--all shows them): 31 IPv6 multicast to groups nobody joined; 10 multicast with no VXLAN entry');
  });
});
