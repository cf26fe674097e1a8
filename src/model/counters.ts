/**
 * Drops the kernel counts but never frees through kfree_skb with a reason (or frees with
 * consume_skb): what the tracepoint cannot see, read from the counters that do move. Each
 * rule says what a counter's growth means, what causes it, what to run next, and which traced
 * reasons are the same drops (so a drop seen both ways is one finding, the traced one).
 * Counter keys: "Group:Name" of /proc/net/snmp and /proc/net/netstat, "dev:IFACE:field" of an
 * interface's rtnetlink stats64, "qdisc:IFACE" drops of its root and ingress qdiscs, "ethtool:IFACE:name" where
 * the driver offers ethtool statistics, "xfrm_stat:XfrmInPolBlock" of /proc/net/xfrm_stat, "softnet:squeezed"
 * machine-wide.
 */
import { QDISC_REASON_NAMES, type Hint } from './hints.js';

export interface CounterRule {
  id: string;
  /** matches a counter key; the groups name what the text fills in ($1: the interface) */
  key: RegExp;
  /** traced reasons that count the same drops: when the window traced those, the counter adds nothing */
  reasons: readonly string[];
  /** how a finding of it ranks (diagnose's impact classes) */
  impact: 'failing-connections' | 'unicast' | 'other';
  hint(m: RegExpExecArray, ns: string): Hint;
}

const hint = (id: string, title: string, explain: string, causes: string[], checks: string[]): Hint => ({ id, title, explain, causes, checks });

export const COUNTER_RULES: readonly CounterRule[] = [
  {
    id: 'counter/ListenOverflows',
    key: /^TcpExt:(ListenOverflows|ListenDrops)$/,
    reasons: ['TCP_LISTEN_OVERFLOW', 'TCP_REQQFULLDROP'],
    impact: 'failing-connections',
    hint: (_m, ns) =>
      hint(
        'counter/ListenOverflows',
        "a listening socket's accept queue overflowed: new connections were dropped",
        'The kernel completed handshakes but the application did not accept() them fast enough; with the accept queue full, SYNs and ACKs of new connections are dropped (freed without a drop reason, so only the counter shows it). Clients see timeouts or retries.',
        ['the application is stuck, overloaded or not calling accept()', 'listen() backlog too small for the connection rate (capped by net.core.somaxconn)', 'a connection storm after a restart'],
        [`${ns}ss -ltn   # Recv-Q above Send-Q on a listener: its accept queue is full`, `${ns}nstat -az TcpExtListenOverflows TcpExtListenDrops`, `${ns}sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog`],
      ),
  },
  {
    id: 'counter/UdpRcvbufErrors',
    key: /^(Udp|Udp6|UdpLite):RcvbufErrors$/,
    reasons: ['SOCKET_RCVBUFF', 'PROTO_MEM'],
    impact: 'unicast',
    hint: (_m, ns) =>
      hint(
        'counter/UdpRcvbufErrors',
        "a UDP socket's receive buffer was full: datagrams were dropped",
        'The application reads slower than datagrams arrive, and its socket buffer (SO_RCVBUF, capped by net.core.rmem_max) filled up.',
        ['a slow or stuck reader (syslog, DNS, metrics, a game server)', 'a receive buffer too small for bursts'],
        [`${ns}ss -lunm   # skmem: r (queued) near rb (buffer size)`, `${ns}nstat -az UdpRcvbufErrors Udp6RcvbufErrors`, 'sysctl net.core.rmem_max net.core.rmem_default'],
      ),
  },
  {
    id: 'counter/TcpBacklogDrop',
    key: /^TcpExt:(TCPBacklogDrop|TCPRcvQDrop|TCPZeroWindowDrop)$/,
    reasons: ['TCP_BACKLOG', 'SOCKET_BACKLOG', 'TCP_ZEROWINDOW', 'PROTO_MEM', 'SOCKET_RCVBUFF'],
    impact: 'unicast',
    hint: (m, ns) =>
      hint(
        'counter/TcpBacklogDrop',
        `TCP segments dropped at a busy or full socket (${m[1]})`,
        'Segments arrived while the socket was owned by the application and its backlog or receive queue was full.',
        ['an application that holds its socket lock for long or reads slowly', 'tcp_rmem too small'],
        [`${ns}ss -tnm`, `${ns}nstat -az TcpExtTCPBacklogDrop TcpExtTCPRcvQDrop`],
      ),
  },
  {
    id: 'counter/dev-rx',
    key: /^dev:([^:]+):(rx_dropped|rx_missed|rx_over_errors|rx_fifo_errors)$/,
    reasons: [],
    impact: 'unicast',
    hint: (m, ns) =>
      hint(
        'counter/dev-rx',
        `${m[1]} dropped received packets in the driver or NIC (${m[2]})`,
        'The interface counted packets it could not hand to the stack: a full RX ring, no buffer, a FIFO overrun, or a frame for an unhandled protocol. The driver frees most of these without a drop reason.',
        ['RX ring too small for bursts (ethtool -g), or interrupts/NAPI starved (softnet time_squeeze)', 'the host is out of memory for buffers', 'frames for a protocol nothing on the host handles (counted as rx_dropped too)'],
        [`${ns}ip -s -s link show ${m[1]}`, `${ns}ethtool -S ${m[1]} | grep -iE 'drop|miss|fifo|no_buf'`, `${ns}ethtool -g ${m[1]}`],
      ),
  },
  {
    id: 'counter/dev-tx',
    key: /^dev:([^:]+):(tx_dropped|tx_errors|tx_carrier_errors)$/,
    reasons: [],
    impact: 'unicast',
    hint: (m, ns) =>
      hint(
        'counter/dev-tx',
        `${m[1]} dropped packets it was sending (${m[2]})`,
        'The interface or its driver discarded outgoing packets: the peer is gone (a veth whose other end is down or deleted), the carrier is lost, or the TX ring is full.',
        ['a veth peer or tunnel endpoint that is down', 'link or carrier loss', 'TX ring full'],
        [`${ns}ip -s -s link show ${m[1]}`, `${ns}ip -d link show ${m[1]}`],
      ),
  },
  {
    id: 'counter/qdisc',
    key: /^qdisc:([^:]+)$/,
    reasons: [...QDISC_REASON_NAMES, 'TC_DROP', 'TC_EGRESS', 'TC_INGRESS', 'QDISC_EGRESS', 'QDISC_INGRESS'],
    impact: 'unicast',
    hint: (m, ns) =>
      hint(
        'counter/qdisc',
        `the queueing discipline on ${m[1]} dropped packets`,
        'A qdisc (a shaper, a policer, a full queue, netem loss) discarded packets before the device sent them.',
        ['a rate limit or policer (tbf, htb, police)', 'a queue limit too small for bursts', 'netem loss configured for testing and left behind'],
        [`${ns}tc -s qdisc show dev ${m[1]}`, `${ns}tc -s class show dev ${m[1]}`, `${ns}tc filter show dev ${m[1]}`],
      ),
  },
  {
    id: 'counter/ethtool',
    key: /^ethtool:([^:]+):(.+)$/,
    reasons: [],
    impact: 'unicast',
    hint: (m, ns) =>
      hint(
        'counter/ethtool',
        `the driver of ${m[1]} counted drops (${m[2]})`,
        'A NIC or driver statistic of dropped or missed packets moved: drops in hardware or in the driver, before the kernel sees a packet.',
        ['RX ring or buffer exhaustion', 'hardware flow control or a NIC queue stalled'],
        [`${ns}ethtool -S ${m[1]}`, `${ns}ethtool -g ${m[1]}`],
      ),
  },
  {
    id: 'counter/xfrm',
    key: /^xfrm_stat:(Xfrm(In|Fwd|Out)\w+)$/,
    reasons: ['XFRM_POLICY'],
    impact: 'unicast',
    hint: (m, ns) =>
      hint(
        'counter/xfrm',
        `IPsec refused packets (${m[1]})`,
        'An xfrm (IPsec) check failed: a policy blocks the flow, requires a transform the packet did not go through (it came in clear), no state (SA) matches, or the SA is expired or replayed. Several of these free the packet without a drop reason.',
        ['a block policy, or a policy that requires ESP from a peer still sending in clear (an encryption rollout half done)', 'a missing or expired SA: the key exchange daemon (strongSwan, libreswan, a CNI\'s encryption) is down', 'a policy left behind by a removed tunnel'],
        [`${ns}cat /proc/net/xfrm_stat`, `${ns}ip -s xfrm policy`, `${ns}ip -s xfrm state`],
      ),
  },
  {
    id: 'counter/softnet-squeeze',
    key: /^softnet:squeezed$/,
    reasons: ['CPU_BACKLOG'],
    impact: 'other',
    hint: () =>
      hint(
        'counter/softnet-squeeze',
        'packet processing ran out of budget (softnet time_squeeze)',
        'NAPI polling stopped with packets still waiting: the CPUs handling receive interrupts are saturated, and RX rings fill and drop upstream.',
        ['too much traffic for the CPUs taking the interrupts', 'RPS/RSS steering everything to one CPU'],
        ['cat /proc/net/softnet_stat   # third column: time_squeeze, per CPU', 'sysctl net.core.netdev_budget net.core.netdev_budget_usecs'],
      ),
  },
];

/** The rule a counter key falls under, with what it matched. */
export function counterRule(key: string): { rule: CounterRule; m: RegExpExecArray } | null {
  for (const rule of COUNTER_RULES) {
    const m = rule.key.exec(key);
    if (m) return { rule, m };
  }
  return null;
}
