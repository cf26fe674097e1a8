/**
 * What a drop means and what to check next. Pure data plus matching: a
 * hint for every drop reason the kernel names (checked against the running
 * kernel's BTF by hints.test.ts), and for the well-known drop functions
 * of kernels without reasons (< 5.17). Commands are templates filled with
 * the drop's own namespace, interface, port and addresses.
 *
 * Over 350 lines because it is a table: one entry per drop reason and per
 * drop function, each a few lines of text. The matching code is the last
 * eighty lines.
 */
import { baseFunction } from './functions.js';

export interface Hint {
  /** stable id, carried by `trace --json` (e.g. "reason/NETFILTER_DROP") */
  id: string;
  title: string;
  explain: string;
  causes: string[];
  checks: string[];
}

/** What a drop says about itself, to fill in the commands. */
export interface DropContext {
  reason?: string | null;
  function?: string | null;
  ifname?: string | null;
  /** `ip netns exec NAME ` or `nsenter -t PID -n ` or '' for the current namespace */
  nsPrefix?: string;
  l4?: string | null;
  saddr?: string | null;
  daddr?: string | null;
  sport?: number | null;
  dport?: number | null;
}

interface Family {
  causes: string[];
  checks: string[];
}

const F: Record<string, Family> = {
  socket: {
    causes: ['no process is listening or bound where the packet was addressed', 'the socket exists but refused the packet (filter, memory, state)'],
    checks: ['{ns}ss -tulpen', '{ns}nstat -az | grep -Ei "NoPorts|RcvbufErrors|InErrors|ListenDrops"'],
  },
  tcp: {
    causes: [
      'the TCP segment did not fit the connection state (sequence, window, timestamps, flags)',
      'usually a symptom of retransmissions, a middlebox rewriting packets, or NAT/conntrack reusing a tuple',
    ],
    // TCP's drop reasons are all on receive: the segment came from the peer, so the peer (ss's
    // dst, the remote end) is the packet's source
    checks: ['{ns}nstat -az | grep -Ei "^Tcp|TCPBacklog|PAWS|TCPAbort|Listen"', '{ns}ss -tin dst {saddr}'],
  },
  tcpauth: {
    causes: ['TCP-MD5 (RFC 2385) or TCP-AO keys differ or are missing on one side (BGP sessions, mostly)'],
    checks: ['{ns}nstat -az | grep -Ei "TCPMD5|TCPAO"', 'compare the configured keys on both peers'],
  },
  ip: {
    causes: ['the IP header or addresses were not acceptable to this host', 'routing did not find a way to deliver or forward it'],
    checks: ['{ns}{ip} route get {daddr}', '{ns}nstat -az | grep -Ei "^Ip|InAddrErrors|InNoRoutes|InHdrErrors"'],
  },
  csum: {
    causes: ['the packet was corrupted in transit (bad NIC, cable, or a buggy offload)', 'checksum offload is misconfigured on a virtual device (veth/tun with offload quirks)'],
    checks: ['ethtool -k {iface} | grep -i checksum', '{ns}nstat -az | grep -i CsumErrors'],
  },
  neigh: {
    causes: ['the next hop does not answer ARP/NDP (down, wrong address, filtered, or on another L2 segment)', 'the neighbour table is full or thrashing'],
    checks: ['{ns}ip neigh show dev {iface}', '{ns}{ip} route get {daddr}', 'sysctl net.{ipv}.neigh.default.gc_thresh3'],
  },
  qdisc: {
    causes: ['the transmit queue of {iface} is full or its AQM dropped the packet: the link or a shaper is saturated'],
    checks: ['{ns}tc -s qdisc show dev {iface}', '{ns}ip -s link show {iface}'],
  },
  tc: {
    causes: ['a tc filter or action, or a BPF program attached with tc, dropped the packet'],
    checks: ['{ns}tc -s filter show dev {iface} ingress', '{ns}tc -s filter show dev {iface} egress', 'bpftool net show'],
  },
  dev: {
    causes: ['the device or its driver could not take or deliver the packet (down, not ready, ring full, bad metadata)'],
    checks: ['{ns}ip -s -s link show {iface}', 'ethtool -S {iface}', 'dmesg | tail -50'],
  },
  frag: {
    causes: ['IP fragments were lost, duplicated, or arrived too late to be reassembled'],
    checks: ['{ns}nstat -az | grep -Ei "Reasm|Frag"', 'sysctl net.ipv4.ipfrag_time net.ipv4.ipfrag_high_thresh'],
  },
  ndisc: {
    causes: ['an IPv6 Neighbour Discovery message was malformed or not for this host'],
    checks: ['{ns}nstat -az | grep -i Icmp6', '{ns}ip -6 neigh show dev {iface}'],
  },
  tunnel: {
    causes: ['the tunnel (VXLAN, Geneve, IPIP, GRE) could not decapsulate or had no target for the packet'],
    checks: ['{ns}ip -d link show {iface}', '{ns}bridge fdb show dev {iface}', '{ns}ip neigh show dev {iface}'],
  },
  l2: {
    causes: ['the Ethernet frame was not acceptable (addresses, bridge port state, L2 policy)'],
    checks: ['{ns}bridge link show', '{ns}ip -d link show {iface}'],
  },
  mem: {
    causes: ['the kernel ran short of memory for the packet or the protocol exceeded its memory limits'],
    checks: ['grep -E "MemFree|MemAvailable" /proc/meminfo', 'cat /proc/net/sockstat', 'sysctl net.ipv4.udp_mem net.ipv4.tcp_mem'],
  },
  policy: {
    causes: ['a security policy (LSM, xfrm/IPsec policy, cgroup BPF, XDP program) rejected the packet'],
    checks: ['bpftool prog show', 'bpftool cgroup tree', '{ns}ip xfrm policy'],
  },
  generic: {
    causes: ['the kernel dropped the packet without naming a reason: the drop function says where'],
    checks: ['droptrace record --stack -o drops.dtr -d 30; droptrace report drops.dtr --stacks   # the callers of the drop site name the code path'],
  },
  can: {
    causes: ['a CAN frame was malformed for its protocol (classic CAN, CAN FD, CAN XL)'],
    checks: ['ip -d -s link show {iface}'],
  },
};

type Entry = [explain: string, family: keyof typeof F] | [explain: string, family: keyof typeof F, deep: Partial<Family> & { title?: string }];

/** One entry per `enum skb_drop_reason` name (prefix stripped), as of Linux 6.18. */
const REASONS: Record<string, Entry> = {
  NOT_SPECIFIED: ['the kernel freed the packet as a drop but gave no reason; the location (function+offset) is the clue', 'generic'],
  NO_SOCKET: [
    'no socket matched: nothing listens on that address and port, or the service is bound to another address (127.0.0.1 instead of 0.0.0.0)',
    'socket',
    {
      title: 'nothing is listening where the packet went',
      causes: [
        'the service is not running, or listens on another port',
        'the service listens on 127.0.0.1 or another specific address, so packets to {daddr}:{dport} find no socket',
        'for UDP: the reply port of a client that already gave up (late replies), or DNS/VXLAN traffic to a host without the listener',
      ],
      checks: ['{ns}ss -ltnup | grep ":{dport}\\b"', '{ns}nstat -az | grep -Ei "NoPorts|TcpOutRsts"', '{ns}ip addr show'],
    },
  ],
  SOCKET_CLOSE: ['the socket was closed while packets were still queued for it', 'socket'],
  SOCKET_FILTER: ['a socket filter (SO_ATTACH_FILTER / classic BPF, e.g. tcpdump or a cgroup socket filter) rejected the packet', 'policy'],
  SOCKET_RCVBUFF: [
    'the receiving socket buffer was full: the application does not read fast enough',
    'socket',
    {
      title: 'the application is not reading fast enough',
      causes: ['the receiving process is slow, blocked or starved of CPU', 'SO_RCVBUF / net.core.rmem_max too small for the burst'],
      checks: ['{ns}ss -uamp | grep -A1 ":{dport}\\b"', '{ns}nstat -az | grep -Ei "RcvbufErrors|InErrors"', 'sysctl net.core.rmem_max net.core.rmem_default'],
    },
  ],
  UNIX_DISCONNECT: ['an AF_UNIX socket was disconnected with data queued', 'socket'],
  UNIX_SKIP_OOB: ['AF_UNIX out-of-band data was skipped', 'socket'],
  PKT_TOO_SMALL: ['the packet was shorter than its headers claim', 'ip'],
  TCP_CSUM: ['TCP checksum error', 'csum'],
  UDP_CSUM: ['UDP checksum error', 'csum'],
  NETFILTER_DROP: [
    'a netfilter rule (iptables/nftables, including kube-proxy and CNI chains) or conntrack dropped the packet',
    'policy',
    {
      title: 'a firewall rule on this host dropped it',
      causes: [
        'a DROP/REJECT rule in INPUT (traffic to this host) or FORWARD (traffic routed through it, e.g. pod to another node)',
        'a chain policy of DROP with no matching ACCEPT (FORWARD policy DROP is common with Docker installed)',
        'conntrack: the table is full ("nf_conntrack: table full" in dmesg) or the packet is INVALID',
      ],
      checks: [
        '{ns}iptables-save -c | grep -E "DROP|REJECT"',
        '{ns}iptables -L INPUT -v -n --line-numbers',
        '{ns}iptables -L FORWARD -v -n --line-numbers',
        '{ns}nft list ruleset | grep -nE "drop|reject"',
        '{ns}sh -c "cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max"',
      ],
    },
  ],
  OTHERHOST: ['the frame was addressed to another host\'s MAC address (promiscuous or flooded traffic)', 'l2'],
  IP_CSUM: ['IPv4 header checksum error', 'csum'],
  IP_INHDR: ['the IP header was invalid (version, length, TTL or options)', 'ip'],
  IP_RPFILTER: [
    'reverse-path filtering: the source address is not reachable back through the interface the packet came in on',
    'ip',
    {
      title: 'reverse-path filter (rp_filter) rejected the source address',
      causes: [
        'asymmetric routing: replies to {saddr} would leave by another interface than {iface}',
        'strict rp_filter (=1) on a host with several uplinks, tunnels (flannel.1, VXLAN) or policy routing',
        'a spoofed or NATed source address',
      ],
      checks: [
        '{ns}sysctl net.ipv4.conf.all.rp_filter net.ipv4.conf.{iface}.rp_filter',
        '{ns}ip route get {saddr}',
        '{ns}nstat -az | grep -i IPReversePathFilter',
        'loose mode keeps the protection: {ns}sysctl -w net.ipv4.conf.{iface}.rp_filter=2',
      ],
    },
  ],
  UNICAST_IN_L2_MULTICAST: ['an IP unicast packet arrived in a link-layer multicast or broadcast frame', 'l2'],
  XFRM_POLICY: ['an IPsec (xfrm) policy check failed', 'policy'],
  IP_NOPROTO: ['no handler for this IP protocol number on this host', 'ip'],
  PROTO_MEM: ['the protocol exceeded its memory limit (udp_mem / tcp_mem)', 'mem'],
  TCP_AUTH_HDR: ['TCP-MD5 or TCP-AO options were present twice or set incorrectly', 'tcpauth'],
  TCP_MD5NOTFOUND: ['a TCP-MD5 signature was expected and missing', 'tcpauth'],
  TCP_MD5UNEXPECTED: ['a TCP-MD5 signature arrived where none was expected', 'tcpauth'],
  TCP_MD5FAILURE: ['the TCP-MD5 signature was wrong', 'tcpauth'],
  TCP_AONOTFOUND: ['a TCP-AO signature was expected and missing', 'tcpauth'],
  TCP_AOUNEXPECTED: ['a TCP-AO signature arrived where none was expected', 'tcpauth'],
  TCP_AOKEYNOTFOUND: ['the TCP-AO key is unknown', 'tcpauth'],
  TCP_AOFAILURE: ['the TCP-AO signature was wrong', 'tcpauth'],
  SOCKET_BACKLOG: [
    'the socket backlog was full while the socket was owned by a user: the application holds the socket lock too long',
    'tcp',
    { checks: ['{ns}nstat -az | grep -Ei "TCPBacklogDrop|TCPRcvQDrop"', '{ns}ss -tinm sport = :{dport}'] },
  ],
  TCP_FLAGS: ['invalid TCP flag combination', 'tcp'],
  TCP_ABORT_ON_DATA: ['data arrived after this end closed the connection (or shut down reading): the kernel answered with a reset', 'tcp'],
  TCP_ZEROWINDOW: ['the receive window was zero: the peer sent data the application had no room for', 'tcp'],
  TCP_OLD_DATA: ['the data had already been received (a spurious retransmission)', 'tcp'],
  TCP_OVERWINDOW: ['the data was beyond the right edge of the receive window', 'tcp'],
  TCP_OFOMERGE: ['the data was already in the out-of-order queue', 'tcp'],
  TCP_RFC7323_PAWS: ['PAWS (RFC 7323): the timestamp was older than the last seen on this connection, often NAT mixing several clients', 'tcp'],
  TCP_RFC7323_PAWS_ACK: ['PAWS: an old ACK by its timestamp', 'tcp'],
  TCP_RFC7323_TW_PAWS: ['PAWS in TIME-WAIT: a segment with an old timestamp hit a TIME-WAIT socket', 'tcp'],
  TCP_RFC7323_TSECR: ['the echoed timestamp (TSecr) was invalid', 'tcp'],
  TCP_LISTEN_OVERFLOW: [
    'the listen queue (accept backlog) was full: the server does not accept() connections fast enough',
    'tcp',
    {
      title: 'the listening socket\'s accept queue is full',
      causes: ['the server does not call accept() fast enough (overloaded, blocked, or a tiny backlog)', 'listen(backlog) or net.core.somaxconn too small for the connection rate'],
      checks: ['{ns}ss -ltn sport = :{dport}', '{ns}nstat -az | grep -Ei "ListenOverflows|ListenDrops"', 'sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog'],
    },
  ],
  TCP_OLD_SEQUENCE: ['an old sequence number (a duplicate segment)', 'tcp'],
  TCP_INVALID_SEQUENCE: ['an unacceptable sequence number', 'tcp'],
  TCP_INVALID_END_SEQUENCE: ['the segment ended outside the acceptable sequence range', 'tcp'],
  TCP_INVALID_ACK_SEQUENCE: ['the ACK number was not between unacknowledged and next-to-send', 'tcp'],
  TCP_RESET: ['an invalid RST (out of window, or for a connection that does not match)', 'tcp'],
  TCP_INVALID_SYN: ['a SYN arrived on an established connection', 'tcp'],
  TCP_CLOSE: ['the TCP socket was in CLOSE state', 'tcp'],
  TCP_FASTOPEN: ['dropped by a TCP Fast Open request socket', 'tcp'],
  TCP_OLD_ACK: ['an old but in-window ACK', 'tcp'],
  TCP_TOO_OLD_ACK: ['an ACK too old to be acceptable', 'tcp'],
  TCP_ACK_UNSENT_DATA: ['an ACK for data not sent yet', 'tcp'],
  TCP_OFO_QUEUE_PRUNE: ['pruned from the out-of-order queue under memory pressure', 'tcp'],
  TCP_OFO_DROP: ['out-of-order data already in the receive queue', 'tcp'],
  IP_OUTNOROUTES: [
    'no route for the outgoing packet',
    'ip',
    { causes: ['no route (or only an unreachable/blackhole/prohibit one) to {daddr}', 'a policy routing rule sends it to an empty table'], checks: ['{ns}{ip} route get {daddr}', '{ns}{ip} rule show', '{ns}{ip} route show table all | grep -E "unreachable|prohibit|blackhole"'] },
  ],
  BPF_CGROUP_EGRESS: ['a cgroup BPF egress program (BPF_PROG_TYPE_CGROUP_SKB) dropped the packet', 'policy'],
  IPV6DISABLED: ['IPv6 is disabled on the device', 'ip', { checks: ['{ns}sysctl net.ipv6.conf.{iface}.disable_ipv6 net.ipv6.conf.all.disable_ipv6'] }],
  NEIGH_CREATEFAIL: ['could not create a neighbour entry (table full?)', 'neigh', { checks: ['{ns}ip -s neigh show | wc -l', 'sysctl net.{ipv}.neigh.default.gc_thresh1 net.{ipv}.neigh.default.gc_thresh2 net.{ipv}.neigh.default.gc_thresh3', 'dmesg | grep -i "neighbor table overflow"'] }],
  NEIGH_FAILED: [
    'the next hop did not answer ARP/NDP: its neighbour entry is FAILED',
    'neigh',
    { title: 'the next hop does not answer ARP/NDP', causes: ['the gateway or destination {daddr} is down, or not on {iface}\'s segment', 'a wrong route sends the packet to a next hop that does not exist', 'ARP is filtered (arptables, a switch ACL, or a missing proxy_arp)'] },
  ],
  NEIGH_QUEUEFULL: ['too many packets waited for ARP/NDP resolution of one neighbour', 'neigh', { checks: ['{ns}ip neigh show dev {iface}', '{ns}sysctl net.{ipv}.neigh.{iface}.unres_qlen_bytes'] }],
  NEIGH_DEAD: ['the neighbour entry was being destroyed', 'neigh'],
  NEIGH_HH_FILLFAIL: ['could not build the link-layer header from the neighbour entry', 'neigh'],
  TC_EGRESS: ['a tc egress filter or BPF program dropped the packet', 'tc'],
  SECURITY_HOOK: ['a security module (SELinux, AppArmor, Smack, BPF LSM) dropped the packet', 'policy'],
  QDISC_DROP: ['the egress queueing discipline could not enqueue the packet', 'qdisc'],
  QDISC_OVERLIMIT: ['the qdisc exceeded its total buffer limit', 'qdisc'],
  QDISC_CONGESTED: ['the qdisc\'s AQM (e.g. CoDel, PIE, RED) dropped it for congestion', 'qdisc'],
  CAKE_FLOOD: ['the CAKE qdisc\'s flood protection (BLUE) dropped it', 'qdisc'],
  FQ_BAND_LIMIT: ['the fq qdisc\'s per-band limit was reached', 'qdisc'],
  FQ_HORIZON_LIMIT: ['the fq qdisc got a packet timestamped too far in the future', 'qdisc'],
  FQ_FLOW_LIMIT: ['one flow exceeded its limit in the fq qdisc', 'qdisc'],
  QDISC_DROP_MAXFLOWS: ['the qdisc could not take another flow: it tracks as many as it may (fq_codel, fq_pie, sfq flows)', 'qdisc'],
  CPU_BACKLOG: [
    'the per-CPU input backlog was full (net.core.netdev_max_backlog) or the RPS flow limit hit',
    'dev',
    {
      title: 'the CPU\'s input backlog overflowed',
      causes: ['a receive burst larger than net.core.netdev_max_backlog on one CPU (veth and loopback traffic all goes through it)', 'RPS/RFS steering many flows to one CPU, or the CPU busy with softirq work'],
      checks: ['cat /proc/net/softnet_stat   # 2nd column: drops per CPU', 'sysctl net.core.netdev_max_backlog net.core.flow_limit_cpu_bitmap', 'mpstat -P ALL 1 5   # %soft'],
    },
  ],
  XDP: ['an XDP program dropped the packet on input', 'policy', { checks: ['{ns}ip -d link show {iface} | grep -i xdp', 'bpftool net show'] }],
  TC_INGRESS: ['a tc ingress filter or BPF program dropped the packet', 'tc'],
  UNHANDLED_PROTO: ['no handler for the protocol (ethertype) of the frame', 'l2'],
  SKB_CSUM: ['error while computing the packet checksum', 'csum'],
  SKB_GSO_SEG: ['segmentation of a GSO packet failed', 'dev'],
  SKB_UCOPY_FAULT: ['copying data from user space failed', 'mem'],
  DEV_HDR: ['the device-specific header or metadata was invalid', 'dev'],
  DEV_READY: ['the device was not ready (down, or queues not set up)', 'dev', { checks: ['{ns}ip link show {iface}'] }],
  FULL_RING: ['the device ring (e.g. tun/tap queue) was full', 'dev'],
  NOMEM: ['out of memory while handling the packet', 'mem'],
  HDR_TRUNC: ['the headers could not be pulled from the packet (truncated)', 'ip'],
  TAP_FILTER: ['an eBPF filter attached to the tun/tap device dropped it', 'dev'],
  TAP_TXFILTER: ['the tun/tap transmit filter dropped it', 'dev'],
  ICMP_CSUM: ['ICMP checksum error', 'csum'],
  INVALID_PROTO: ['the packet does not follow its protocol (e.g. a broadcast ICMP timestamp)', 'ip'],
  IP_INADDRERRORS: ['the destination address is unreachable or not for this host (host unreachable)', 'ip'],
  IP_INNOROUTES: [
    'no route to forward the packet (network unreachable)',
    'ip',
    { checks: ['{ns}{ip} route get {daddr} from {saddr} iif {iface}', '{ns}sysctl {forwarding}', '{ns}{ip} rule show'] },
  ],
  IP_LOCAL_SOURCE: ['the source address is one of this host\'s own addresses (a loop, or spoofing)', 'ip'],
  IP_INVALID_SOURCE: ['invalid source address (multicast, broadcast, or zero without IGMP)', 'ip'],
  IP_LOCALNET: ['source or destination in 127.0.0.0/8 arrived on a non-loopback interface (see route_localnet)', 'ip'],
  IP_INVALID_DEST: ['invalid destination address (0.0.0.0)', 'ip'],
  PKT_TOO_BIG: [
    'the packet was larger than the MTU and could not be fragmented (DF set, or IPv6)',
    'ip',
    {
      title: 'bigger than the path MTU',
      causes: ['an MTU mismatch: overlay devices (flannel.1, VXLAN: 50 bytes of overhead) need a smaller MTU than the physical link', 'PMTU discovery broken because ICMP "fragmentation needed" is filtered'],
      checks: ['{ns}ip link show {iface} | grep -o "mtu [0-9]*"', '{ns}ip route get {daddr}', '{ns}tracepath -n {daddr}'],
    },
  ],
  DUP_FRAG: ['duplicate IP fragment', 'frag'],
  FRAG_REASM_TIMEOUT: ['IP fragment reassembly timed out: a fragment was lost', 'frag'],
  FRAG_TOO_FAR: ['IPv4 fragment too far from the others (net.ipv4.ipfrag_max_dist)', 'frag'],
  TCP_MINTTL: ['TTL or hop limit below the socket\'s minimum (IP_MINTTL / IPV6_MINHOPCOUNT, used by BGP GTSM)', 'tcp'],
  IPV6_BAD_EXTHDR: ['a bad IPv6 extension header', 'ip'],
  IPV6_NDISC_FRAG: ['a fragmented Neighbour Discovery message (not allowed)', 'ndisc'],
  IPV6_NDISC_HOP_LIMIT: ['a Neighbour Discovery message with hop limit other than 255', 'ndisc'],
  IPV6_NDISC_BAD_CODE: ['a Neighbour Discovery message with a bad ICMPv6 code', 'ndisc'],
  IPV6_NDISC_BAD_OPTIONS: ['a Neighbour Discovery message with bad options', 'ndisc'],
  IPV6_NDISC_NS_OTHERHOST: ['a Neighbour Solicitation for another host\'s address', 'ndisc'],
  QUEUE_PURGE: ['a queue was purged in bulk (device reset, socket teardown)', 'dev'],
  TC_COOKIE_ERROR: ['error processing a tc extension cookie', 'tc'],
  PACKET_SOCK_ERROR: ['a packet socket (AF_PACKET, e.g. a sniffer) failed to take a packet its filter matched', 'socket'],
  TC_CHAIN_NOTFOUND: ['a tc goto-chain pointed to a chain that does not exist', 'tc'],
  TC_RECLASSIFY_LOOP: ['tc reclassified the packet too many times', 'tc'],
  VXLAN_INVALID_HDR: ['the VXLAN header was invalid (reserved bits set, or the I flag missing)', 'tunnel'],
  VXLAN_VNI_NOT_FOUND: [
    'no VXLAN device for the packet\'s VNI',
    'tunnel',
    { causes: ['the sender uses a VNI this host has no vxlan device for (flannel uses VNI 1)', 'the vxlan device is down or was recreated with another id'], checks: ['{ns}ip -d link show type vxlan'] },
  ],
  MAC_INVALID_SOURCE: ['the source MAC address was invalid (multicast or zero)', 'l2'],
  VXLAN_ENTRY_EXISTS: ['a VXLAN FDB entry could not migrate (static entry, or one pointing to a nexthop)', 'tunnel'],
  NO_TX_TARGET: ['no target to transmit to (e.g. a VXLAN FDB miss, or an empty team/bond)', 'tunnel'],
  IP_TUNNEL_ECN: ['dropped by ECN decapsulation rules (RFC 6040)', 'tunnel'],
  TUNNEL_TXINFO: ['a packet without tunnel metadata reached an external-mode (collect_md) tunnel device', 'tunnel'],
  LOCAL_MAC: ['the source MAC address is this device\'s own (a loop in the L2 network)', 'l2'],
  ARP_PVLAN_DISABLE: ['a non-IP packet was forwarded back to the same interface with proxy_arp_pvlan off', 'l2'],
  MAC_IEEE_MAC_CONTROL: ['the destination is an IEEE MAC Control address (pause frames), never forwarded', 'l2'],
  BRIDGE_INGRESS_STP_STATE: ['the bridge port\'s STP state does not allow forwarding (blocking, listening, learning)', 'l2', { checks: ['{ns}bridge link show'] }],
  CAN_RX_INVALID_FRAME: ['an invalid classic CAN frame', 'can'],
  CANFD_RX_INVALID_FRAME: ['an invalid CAN FD frame', 'can'],
  CANXL_RX_INVALID_FRAME: ['an invalid CAN XL frame', 'can'],
  PFMEMALLOC: ['a packet from emergency (pfmemalloc) reserves reached a socket not allowed to use them', 'mem'],
  DUALPI2_STEP_DROP: ['the DualPI2 qdisc\'s step AQM dropped it (L4S)', 'qdisc'],
  PSP_INPUT: ['PSP (PSP Security Protocol) input policy check failed', 'policy'],
  PSP_OUTPUT: ['PSP (PSP Security Protocol) output policy check failed', 'policy'],
  RECURSION_LIMIT: ['the transmit path recursed too deeply (stacked or looping tunnel devices)', 'tunnel'],
  BLACKHOLE: ['a blackhole route discarded the packet', 'ip', { checks: ['{ns}{ip} route show table all type blackhole', '{ns}{ip} route get {daddr}'] }],
};

/** Reason names that are not drops: no hint needed. */
export const NOT_DROPS = new Set(['NOT_DROPPED_YET', 'CONSUMED', 'MAX', 'SUBSYS_MASK']);

/** Drop functions of kernels without reasons (< 5.17), and of NOT_SPECIFIED drops. */
const FUNCTIONS: Record<string, Entry> = {
  ip_rcv: ['IPv4 input checks failed: bad header, checksum, or OTHERHOST', 'ip'],
  ip_rcv_core: ['IPv4 input checks failed: bad header, checksum, or OTHERHOST', 'ip'],
  ip_rcv_finish: ['IPv4 input routing failed: rp_filter, no route, or martian source', 'ip', { checks: ['{ns}sysctl net.ipv4.conf.{iface}.rp_filter', '{ns}ip route get {saddr}', '{ns}nstat -az | grep -Ei "IPReversePathFilter|InNoRoutes|InAddrErrors"'] }],
  ip_rcv_finish_core: ['IPv4 input routing dropped the packet (rp_filter, no route, or a martian/broadcast it does not accept)', 'ip', { checks: ['{ns}sysctl net.ipv4.conf.{iface}.rp_filter', '{ns}ip route get {daddr} from {saddr} iif {iface}'] }],
  ip_forward: ['forwarding refused: ip_forward off, TTL exceeded, or too big for the next hop', 'ip', { checks: ['{ns}sysctl net.ipv4.ip_forward', '{ns}nstat -az | grep -Ei "InHdrErrors|FragFails|ForwDatagrams"'] }],
  nf_hook_slow: ['a netfilter hook returned DROP: an iptables/nftables rule or conntrack', 'policy', { checks: ['{ns}iptables-save -c | grep -E "DROP|REJECT"', '{ns}nft list ruleset | grep -nE "drop|reject"'] }],
  nft_do_chain: ['an nftables chain (iptables-nft too) dropped the packet', 'policy', { checks: ['{ns}iptables-save -c | grep -E "DROP|REJECT"', '{ns}nft list ruleset | grep -nE "drop|reject"'] }],
  ipt_do_table: ['a legacy iptables rule dropped the packet', 'policy', { checks: ['{ns}iptables-legacy-save -c | grep -E "DROP|REJECT"'] }],
  __udp4_lib_rcv: ['UDP input: no socket (closed port) or a checksum error', 'socket', { checks: ['{ns}ss -lunp | grep ":{dport}\\b"', '{ns}nstat -az | grep -Ei "UdpNoPorts|UdpInCsumErrors"'] }],
  udp_queue_rcv_one_skb: ['UDP socket queue: receive buffer full or socket filter', 'socket'],
  tcp_v4_rcv: ['TCP input: no socket (closed port), bad checksum, or a segment that fits no connection', 'socket', { checks: ['{ns}ss -ltnp | grep ":{dport}\\b"', '{ns}nstat -az | grep -Ei "TcpInErrs|TcpInCsumErrors|OutRsts"'] }],
  tcp_v4_do_rcv: ['TCP state processing dropped the segment', 'tcp'],
  tcp_rcv_state_process: ['TCP state machine dropped the segment', 'tcp'],
  tcp_conn_request: ['the SYN queue or accept queue was full (listen overflow) or SYN cookies refused it', 'tcp', { checks: ['{ns}nstat -az | grep -Ei "ListenOverflows|ListenDrops|SyncookiesFailed"'] }],
  enqueue_to_backlog: ['the per-CPU input backlog was full (net.core.netdev_max_backlog)', 'dev', { checks: ['cat /proc/net/softnet_stat', 'sysctl net.core.netdev_max_backlog'] }],
  __netif_receive_skb_core: ['no protocol handler took the frame (unknown ethertype, or a device with no upper layer)', 'l2'],
  __dev_queue_xmit: ['transmit failed: device down or queue stopped', 'dev'],
  sch_direct_xmit: ['the qdisc could not hand the packet to the driver', 'qdisc'],
  neigh_resolve_output: ['neighbour resolution failed', 'neigh'],
  __neigh_event_send: ['too many packets waiting for ARP/NDP, or the neighbour FAILED', 'neigh'],
  ip_finish_output2: ['no neighbour for the next hop', 'neigh'],
  ip6_mc_input: ['IPv6 multicast input: a group this host did not join (e.g. MLD reports on a bridge)', 'ip'],
  icmp_rcv: ['ICMP input checks failed', 'ip'],
  vxlan_rcv: ['VXLAN decapsulation failed (bad header, unknown VNI, or the inner packet was refused)', 'tunnel'],
  br_handle_frame: ['the bridge refused the frame (port state, invalid source MAC)', 'l2'],
  br_handle_frame_finish: ['the bridge did not forward the frame (port state, VLAN filtering)', 'l2'],
  skb_queue_purge_reason: ['a queue was purged in bulk', 'dev'],
  // sites that drop without a reason on 6.1–6.18 (NOT_SPECIFIED), by the machinery they belong to
  ip_error: [
    'input routing refused the packet: a blackhole, unreachable or prohibit route or policy rule, no route, or forwarding off on the input interface',
    'ip',
    { title: 'routing refused the packet', checks: ['{ns}ip route get {daddr} from {saddr} iif {iface}', '{ns}ip rule show', '{ns}ip route show table all match {daddr}', '{ns}sysctl net.ipv4.conf.{iface}.forwarding'] },
  ],
  ip6_pkt_discard: ['IPv6 routing refused the packet: an unreachable or blackhole route, or no route', 'ip', { checks: ['{ns}ip -6 route get {daddr} from {saddr} iif {iface}', '{ns}ip -6 rule show', '{ns}sysctl net.ipv6.conf.{iface}.forwarding'] }],
  ip6_pkt_discard_out: ['IPv6 routing found no usable route for an outgoing packet (unreachable or blackhole)', 'ip', { checks: ['{ns}ip -6 route get {daddr}', '{ns}ip -6 rule show'] }],
  ip6_pkt_prohibit: ['an IPv6 prohibit route or policy rule refused the packet', 'ip', { checks: ['{ns}ip -6 route get {daddr} from {saddr} iif {iface}', '{ns}ip -6 rule show'] }],
  ip6_pkt_prohibit_out: ['an IPv6 prohibit route or policy rule refused an outgoing packet', 'ip', { checks: ['{ns}ip -6 route get {daddr}', '{ns}ip -6 rule show'] }],
  dst_discard: ['the packet was routed to a discarding route (a blackhole route, or a route whose device is gone)', 'ip', { checks: ['{ns}{ip} route show table all type blackhole', '{ns}{ip} route get {daddr}'] }],
  dst_discard_out: ['an outgoing packet was routed to a discarding route (a blackhole route, or a route whose device is gone)', 'ip', { checks: ['{ns}{ip} route show table all type blackhole', '{ns}{ip} route get {daddr}'] }],
  ip6_forward: ['IPv6 forwarding refused: forwarding off, hop limit exceeded, too big for the next hop, or an IPsec policy', 'ip', { checks: ['{ns}sysctl net.ipv6.conf.all.forwarding net.ipv6.conf.{iface}.forwarding', '{ns}nstat -az | grep -Ei "Ip6InHdrErrors|Ip6InTooBigErrors|Ip6InAddrErrors"'] }],
  ipv6_rcv: ['IPv6 input checks failed (header, addresses, or IPv6 disabled on the device)', 'ip'],
  ip6_rcv_core: ['IPv6 input checks failed (header, addresses, or IPv6 disabled on the device)', 'ip'],
  ip_protocol_deliver_rcu: ['no handler for the IP protocol, or an IPsec policy refused the packet', 'ip', { checks: ['{ns}nstat -az | grep -Ei "InUnknownProtos"', '{ns}ip xfrm policy'] }],
  ip6_protocol_deliver_rcu: ['no handler for the IPv6 next header, or an IPsec policy refused the packet', 'ip', { checks: ['{ns}nstat -az | grep -Ei "Ip6InUnknownProtos"', '{ns}ip xfrm policy'] }],
  ip_do_fragment: ['the packet could not be fragmented for the next hop\'s MTU (DF set, or no memory)', 'frag', { checks: ['{ns}ip route get {daddr}', '{ns}nstat -az | grep -Ei "FragFails"'] }],
  ip6_fragment: ['the IPv6 packet could not be fragmented for the next hop\'s MTU', 'frag'],
  __udp6_lib_rcv: ['UDP (IPv6) input: no socket (closed port), a checksum error, or an IPsec policy', 'socket', { checks: ['{ns}ss -lunp | grep ":{dport}\\b"', '{ns}nstat -az | grep -Ei "Udp6NoPorts|Udp6InCsumErrors"'] }],
  udpv6_queue_rcv_one_skb: ['UDP (IPv6) socket queue: receive buffer full, socket filter, or an IPsec policy', 'socket'],
  tcp_v6_rcv: ['TCP (IPv6) input: no socket (closed port), bad checksum, an IPsec policy, or a segment that fits no connection', 'socket', { checks: ['{ns}ss -ltnp | grep ":{dport}\\b"', '{ns}nstat -az | grep -Ei "TcpInErrs|TcpInCsumErrors|OutRsts"'] }],
  __xfrm_policy_check: ['an IPsec (xfrm) policy refused the packet: a block policy, or one whose transforms the packet did not go through', 'policy', { checks: ['{ns}ip -s xfrm policy', '{ns}cat /proc/net/xfrm_stat', '{ns}ip xfrm state'] }],
  __xfrm_policy_check2: ['an IPsec (xfrm) policy refused the packet: a block policy, or one whose transforms the packet did not go through', 'policy', { checks: ['{ns}ip -s xfrm policy', '{ns}cat /proc/net/xfrm_stat', '{ns}ip xfrm state'] }],
  veth_xdp_rcv_skb: ['an XDP program on the veth dropped the packet (XDP_DROP or XDP_ABORTED), or its verdict could not be carried out', 'policy', { checks: ['{ns}bpftool net show dev {iface}', '{ns}ip -d link show {iface} | grep -i xdp', '{ns}ethtool -S {iface} | grep -i xdp'] }],
  veth_xdp_rcv_one: ['an XDP program on the veth dropped a frame (XDP_DROP or XDP_ABORTED)', 'policy', { checks: ['{ns}bpftool net show dev {iface}', '{ns}ethtool -S {iface} | grep -i xdp'] }],
  do_xdp_generic: ['a generic-mode XDP program dropped the packet (XDP_DROP or XDP_ABORTED)', 'policy', { checks: ['{ns}bpftool net show dev {iface}', '{ns}ip -d link show {iface} | grep -i xdp'] }],
  netif_receive_generic_xdp: ['a generic-mode XDP program dropped the packet (XDP_DROP or XDP_ABORTED)', 'policy', { checks: ['{ns}bpftool net show dev {iface}'] }],
  sk_filter_trim_cap: ['a socket filter refused the packet: classic or eBPF (SO_ATTACH_FILTER, a cgroup ingress program)', 'policy', { checks: ['bpftool cgroup tree', '{ns}ss -0 -p   # packet sockets with filters'] }],
  sch_handle_ingress: ['a tc ingress classifier, action or BPF program dropped the packet', 'tc', { checks: ['{ns}tc -s filter show dev {iface} ingress', '{ns}bpftool net show dev {iface}'] }],
  sch_handle_egress: ['a tc egress classifier, action or BPF program dropped the packet', 'tc', { checks: ['{ns}tc -s filter show dev {iface} egress', '{ns}bpftool net show dev {iface}'] }],
  tcf_classify: ['a tc classifier or action dropped the packet', 'tc'],
  validate_xmit_skb: ['the packet could not be prepared for the device (segmentation or checksum offload failed)', 'dev', { checks: ['ethtool -k {iface}'] }],
  br_dev_queue_push_xmit: ['the bridge could not hand the frame to the port (MTU too small for it, or the port cannot send)', 'l2', { checks: ['{ns}ip -d link show {iface}', '{ns}bridge link show'] }],
  __br_forward: ['the bridge did not forward the frame to a port', 'l2'],
  vxlan_xmit_one: ['VXLAN could not send: no route to the remote VTEP, or a loop', 'tunnel', { checks: ['{ns}bridge fdb show dev {iface}', '{ns}ip -d link show {iface}', '{ns}ip route get {daddr}'] }],
  vxlan_xmit: ['VXLAN had no forwarding entry for the destination (no FDB entry, no default destination)', 'tunnel', { checks: ['{ns}bridge fdb show dev {iface}', '{ns}ip neigh show dev {iface}'] }],
  geneve_rcv: ['Geneve decapsulation failed (bad header, unknown VNI, or the inner packet was refused)', 'tunnel'],
  ip_tunnel_rcv: ['an IP tunnel (IPIP, GRE, SIT) could not decapsulate the packet (ECN, checksum or sequence checks)', 'tunnel'],
  tun_get_user: ['a tun/tap device could not take the packet from user space (bad header, no memory, filter)', 'dev'],
  tun_net_xmit: ['a tun/tap device could not queue the packet for its reader (queue full, no reader, filter)', 'dev', { checks: ['{ns}ip -s -s link show {iface}'] }],
  arp_rcv: ['ARP input refused the frame (malformed, for another host, or ARP off on the device)', 'neigh'],
  arp_process: ['ARP processing dropped the request or reply (filter, arp_ignore/arp_announce, or a martian)', 'neigh', { checks: ['{ns}sysctl net.ipv4.conf.{iface}.arp_ignore net.ipv4.conf.{iface}.arp_filter'] }],
  ndisc_rcv: ['an IPv6 Neighbour Discovery message was refused', 'ndisc'],
  icmpv6_rcv: ['ICMPv6 input checks failed (checksum, or a message this host refuses)', 'ip'],
  virtio_transport_recv_pkt: ['a vsock packet (the VM\'s channel to its host) found no socket: not IP traffic', 'socket', { checks: ['ss -x -a --vsock'] }],
};

function build(id: string, e: Entry): Hint {
  const [explain, family, deep] = e;
  const f = F[family];
  return {
    id,
    title: deep?.title ?? explain,
    explain,
    causes: deep?.causes ?? f.causes,
    checks: [...(deep?.checks ?? []), ...f.checks.filter((c) => !(deep?.checks ?? []).includes(c))].slice(0, 6),
  };
}

/**
 * The qdisc's own reasons (enum qdisc_drop_reason, subsystem QDISC, 7.x+) that say what a core
 * reason of older kernels said: one explanation for both names.
 */
const QDISC_REASONS: Record<string, string> = {
  QDISC_DROP_GENERIC: 'QDISC_DROP',
  QDISC_DROP_OVERLIMIT: 'QDISC_OVERLIMIT',
  QDISC_DROP_CONGESTED: 'QDISC_CONGESTED',
  QDISC_DROP_FLOOD_PROTECTION: 'CAKE_FLOOD',
  QDISC_DROP_BAND_LIMIT: 'FQ_BAND_LIMIT',
  QDISC_DROP_HORIZON_LIMIT: 'FQ_HORIZON_LIMIT',
  QDISC_DROP_FLOW_LIMIT: 'FQ_FLOW_LIMIT',
  QDISC_DROP_L4S_STEP_NON_ECN: 'DUALPI2_STEP_DROP',
};

/** The hint for a reason name (prefix stripped) or null when we have none for it. */
export function reasonHint(reason: string): Hint | null {
  const e = REASONS[reason] ?? REASONS[QDISC_REASONS[reason] ?? ''];
  return e ? build(`reason/${reason}`, e) : null;
}

/** Every qdisc reason name, old kernels' and the qdisc subsystem's: counter rules match either. */
export const QDISC_REASON_NAMES: readonly string[] = [
  'QDISC_DROP', 'QDISC_OVERLIMIT', 'QDISC_CONGESTED', 'CAKE_FLOOD', 'FQ_BAND_LIMIT', 'FQ_HORIZON_LIMIT', 'FQ_FLOW_LIMIT', 'DUALPI2_STEP_DROP',
  ...Object.keys(QDISC_REASONS), 'QDISC_DROP_MAXFLOWS',
];

/** The hint for a drop function (suffixes such as .isra.0 and .cold ignored). */
export function functionHint(fn: string): Hint | null {
  const base = baseFunction(fn);
  const e = FUNCTIONS[base];
  return e ? build(`function/${base}`, e) : null;
}

/** Family fallback for a reason a newer kernel added: better than nothing, said as such. */
function familyHint(reason: string): Hint | null {
  const fam: Array<[RegExp, keyof typeof F]> = [
    [/^TCP_(MD5|AO)/, 'tcpauth'],
    [/^TCP_/, 'tcp'],
    [/^(IP|IPV6)_/, 'ip'],
    [/^NEIGH_/, 'neigh'],
    [/^(QDISC|FQ|CAKE)_/, 'qdisc'],
    [/^TC_/, 'tc'],
    [/^(VXLAN|TUNNEL)_/, 'tunnel'],
    [/^FRAG_/, 'frag'],
    [/^SOCKET_|^UNIX_/, 'socket'],
  ];
  for (const [re, f] of fam) {
    if (re.test(reason)) return { id: `family/${f}`, title: reason, explain: `${reason} (a reason this droptrace has no specific hint for)`, causes: F[f].causes, checks: F[f].checks };
  }
  return null;
}

/** The best hint for a drop: its reason, else (no reason, or NOT_SPECIFIED) its function. */
export function hintFor(ctx: DropContext): Hint | null {
  const byReason = ctx.reason && ctx.reason !== 'NOT_SPECIFIED' ? (reasonHint(ctx.reason) ?? familyHint(ctx.reason)) : null;
  if (byReason) return byReason;
  const byFn = ctx.function ? functionHint(ctx.function) : null;
  return byFn ?? (ctx.reason ? reasonHint(ctx.reason) : null);
}

/** Fills {ns} {iface} {port} {dport} {saddr} {daddr} {l4} {ip} {ipv} {forwarding} in a hint's text. */
export function fill(text: string, ctx: DropContext): string {
  const v6 = (ctx.daddr ?? ctx.saddr ?? '').includes(':');
  const v: Record<string, string> = {
    ns: ctx.nsPrefix ?? '',
    iface: ctx.ifname || 'IFACE',
    dport: ctx.dport != null ? String(ctx.dport) : 'PORT',
    port: ctx.dport != null ? String(ctx.dport) : 'PORT',
    saddr: ctx.saddr ?? 'SRC',
    daddr: ctx.daddr ?? 'DST',
    l4: (ctx.l4 ?? 'ip').toLowerCase(),
    // the routing commands of the flow's family: `ip rule show` and `ip route show` list IPv4 only
    ip: v6 ? 'ip -6' : 'ip',
    ipv: v6 ? 'ipv6' : 'ipv4',
    forwarding: v6 ? 'net.ipv6.conf.all.forwarding' : 'net.ipv4.ip_forward',
  };
  return text.replace(/\{(\w+)\}/g, (m, k: string) => v[k] ?? m);
}

/** A hint with its commands filled in for this drop. */
export function filledHint(ctx: DropContext): Hint | null {
  const h = hintFor(ctx);
  if (!h) return null;
  return { ...h, title: fill(h.title, ctx), explain: fill(h.explain, ctx), causes: h.causes.map((c) => fill(c, ctx)), checks: h.checks.map((c) => fill(c, ctx)) };
}

/** Hint as text for the live detail view and reports. */
export function formatHint(h: Hint): string {
  return [h.explain, 'Likely causes:', ...h.causes.map((c) => `  - ${c}`), 'Next:', ...h.checks.map((c) => `  $ ${c}`)].join('\n');
}

/** Names the hint table covers (for the coverage test). */
export function hintedReasons(): string[] {
  return Object.keys(REASONS);
}

/**
 * The hint table against a pinned list of reasons (a kernel's enum kept in the repo) and the
 * running kernel's: `missing` are pinned reasons without an entry (a defect of the table);
 * `added` are reasons the running kernel has beyond the pinned ones, with the hint they get
 * (their family's, or none): news to report, never a failure.
 */
export function hintCoverage(pinned: readonly string[], running: readonly string[]): { missing: string[]; added: Array<{ reason: string; hint: string | null }> } {
  const pin = new Set(pinned);
  return {
    missing: pinned.filter((n) => !NOT_DROPS.has(n) && !reasonHint(n)),
    added: running.filter((n) => !pin.has(n) && !NOT_DROPS.has(n)).map((reason) => ({ reason, hint: hintFor({ reason })?.id ?? null })),
  };
}

const idCache = new Map<string, string | null>();

/** The hint id for a reason/function pair, memoized: trace --json asks once per event. */
export function hintId(reason: string | null, fn: string | null): string | null {
  const k = `${reason}|${fn}`;
  let v = idCache.get(k);
  if (v === undefined) {
    v = hintFor({ reason, function: fn })?.id ?? null;
    if (idCache.size < 10_000) idCache.set(k, v);
  }
  return v;
}

/** The command prefix that runs a command in a named network namespace. */
export function nsPrefix(netnsName: string | null | undefined): string {
  return netnsName ? `ip netns exec ${netnsName} ` : '';
}
