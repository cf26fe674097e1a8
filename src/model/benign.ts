/**
 * Drops a healthy node makes all the time: packets that nothing on the host
 * was meant to receive (multicast to groups nobody joined, frames for other
 * hosts, protocols the host does not speak, broadcasts nobody listens to).
 * They are real drops, counted exactly, but they are not why a connection
 * fails, so diagnose and live fold them into one line instead of ranking
 * them above the fault. Pure.
 *
 * Every rule names the kernel's reason and/or drop function and, where those
 * alone do not decide it, the packet's shape. A rule that needs the shape
 * never matches a drop seen only as a count (no event): unknown is shown.
 * docs/DESIGN.md lists the rules with the kernel code they come from.
 */
import { baseFunction } from './functions.js';

/** What a rule may look at: one drop, or one flow of drops at one site. */
export interface DropShape {
  /** the kernel's drop reason name, or null on kernels without reasons */
  reason: string | null;
  /** the function the drop happened in (no offset) */
  function: string | null;
  /** skb->protocol (0x0800, 0x86dd, …) */
  ethertype: number;
  /** IPPROTO_* of the upper-layer header, when an IP header was read */
  l4proto: number | null;
  /** destination address as droptrace prints it, when an IP header was read */
  daddr: string | null;
  /** the IP version of that header (4, 6; 0 when none was read) */
  ipver?: number;
  /** whether the skb had a device (false: a socket's own buffer, such as a netlink message) */
  device?: boolean;
  dport: number | null;
  icmpType: number | null;
}

export interface BenignRule {
  id: string;
  /** one line a person reads in the folded summary */
  title: string;
  /** why it is expected on a healthy node */
  why: string;
  /** true when reason and function alone decide it (no event needed) */
  shapeFree: boolean;
  test(s: DropShape): boolean;
}

const ETH_IPV4 = 0x0800;
const ETH_ARP = 0x0806;
const ETH_IPV6 = 0x86dd;
const IPPROTO_IGMP = 2;
const IPPROTO_UDP = 17;

/**
 * IPv4 224.0.0.0/4 or IPv6 ff00::/8, of an address as decode.ts prints it for that IP version:
 * an IPv6 address in ff00::/8 always prints as four hex digits "ffXX" then ":", an IPv4 one as
 * its first octet then ".".
 */
export function isMulticast(addr: string | null, ipver: number): boolean {
  if (!addr) return false;
  if (ipver === 6) return /^ff[0-9a-f]{2}:/.test(addr);
  const first = Number(/^\d+/.exec(addr)?.[0] ?? NaN);
  return first >= 224 && first <= 239;
}

/** Multicast, or the IPv4 limited broadcast. */
export function isGroupAddress(addr: string | null, ipver: number): boolean {
  return (ipver === 4 && addr === '255.255.255.255') || isMulticast(addr, ipver);
}

// .isra/.constprop/.cold copies are the same function
const fnIs = (s: DropShape, ...names: string[]) => s.function !== null && names.includes(baseFunction(s.function));

export const BENIGN_RULES: readonly BenignRule[] = [
  {
    id: 'ipv6-multicast-not-joined',
    title: 'IPv6 multicast to groups nobody on this host joined (MLD reports, router solicitations)',
    why: 'ip6_mc_input frees a multicast packet when no socket or router on the host wants the group: every bridge, veth and tunnel sees the MLD reports and router solicitations its neighbours send when an interface comes up',
    shapeFree: true,
    test: (s) => fnIs(s, 'ip6_mc_input'),
  },
  {
    id: 'tunnel-multicast-no-target',
    title: 'multicast or broadcast with no VXLAN forwarding entry (Flannel installs unicast entries only)',
    why: 'vxlan_xmit drops a frame whose destination has no FDB entry and no default remote; Flannel and most CNIs program only unicast entries, so the IPv6 MLD/ND multicast the host itself sends on flannel.1 goes nowhere',
    shapeFree: false,
    test: (s) => (s.reason === null || s.reason === 'NO_TX_TARGET' || s.reason === 'VXLAN_NO_REMOTE') && fnIs(s, 'vxlan_xmit', 'vxlan_xmit_one') && isGroupAddress(s.daddr, s.ipver ?? 0),
  },
  {
    id: 'fragments-of-freed-packet',
    title: 'fragments freed along with the packet they were reassembled into (not drops of their own)',
    why: 'skb_release_data frees a packet\'s frag_list through kfree_skb_list_reason: when conntrack or bridge netfilter reassembled a packet and ip_do_fragment sent it on as new fragments, consume_skb frees the old ones as NOT_SPECIFIED drops; when the packet itself was dropped, it is counted at its own site',
    shapeFree: true,
    test: (s) => fnIs(s, 'skb_release_data'),
  },
  {
    id: 'other-host',
    title: 'frames addressed to another host (promiscuous interface or bridge port)',
    why: 'ip_rcv_core and ipv6_rcv drop packets whose pkt_type is PACKET_OTHERHOST: a promiscuous device (a bridge port, a capture) hands up frames meant for other MAC addresses',
    shapeFree: true,
    test: (s) => s.reason === 'OTHERHOST',
  },
  {
    id: 'ndisc-for-other-host',
    title: 'IPv6 neighbour solicitations for addresses this host does not have',
    why: 'ndisc_recv_ns drops a solicitation whose target is not one of ours: normal on any shared IPv6 link',
    shapeFree: true,
    test: (s) => s.reason === 'IPV6_NDISC_NS_OTHERHOST',
  },
  {
    id: 'multicast-udp-no-listener',
    title: 'multicast or broadcast UDP nobody on this host listens to (mDNS, SSDP, DHCP, LLMNR)',
    why: 'a datagram to a group or broadcast address finds no socket: neighbours announcing services; the drop is the host declining, not a failed connection',
    shapeFree: false,
    test: (s) => s.reason === 'NO_SOCKET' && s.l4proto === IPPROTO_UDP && isGroupAddress(s.daddr, s.ipver ?? 0),
  },
  {
    id: 'igmp-not-joined',
    title: 'IGMP for groups nobody on this host joined',
    why: 'igmp_rcv frees reports and queries for groups the host is not a member of; a report to a link-local group (224.0.0.22, IGMPv3) that input routing will not take is the same chatter',
    shapeFree: false,
    test: (s) => (fnIs(s, 'igmp_rcv') || isGroupAddress(s.daddr, s.ipver ?? 0)) && s.l4proto === IPPROTO_IGMP,
  },
  {
    id: 'unhandled-l2-protocol',
    title: 'link-layer protocols this host does not speak (LLDP, STP, vendor frames)',
    why: '__netif_receive_skb_core frees a frame whose ethertype no protocol handler claimed: switches send LLDP and STP to every port',
    shapeFree: false,
    test: (s) => s.reason === 'UNHANDLED_PROTO' && s.ethertype !== ETH_IPV4 && s.ethertype !== ETH_ARP && s.ethertype !== ETH_IPV6,
  },
  {
    id: 'pause-frames',
    title: 'Ethernet flow-control (PAUSE) frames',
    why: 'MAC control frames are consumed by the NIC or dropped by the stack: they carry no data for the host',
    shapeFree: true,
    test: (s) => s.reason === 'MAC_IEEE_MAC_CONTROL',
  },
  {
    id: 'socket-queue-unread',
    title: "messages left unread in a socket's queue when it closed (netlink replies to ip, tc, iptables)",
    why: 'closing a socket purges what is still queued on it: a netlink dump that ip, tc, iptables-save or a CNI plugin closed before reading its last reply is freed as QUEUE_PURGE, with no device and no IP header; droptrace itself does this when it reads counters',
    shapeFree: false,
    test: (s) => (s.reason === 'QUEUE_PURGE' || fnIs(s, 'skb_queue_purge_reason', 'skb_queue_purge', '__skb_queue_purge')) && s.device === false && s.ethertype !== ETH_IPV4 && s.ethertype !== ETH_IPV6,
  },
  {
    id: 'ipv6-disabled',
    title: 'IPv6 arriving on an interface with IPv6 switched off',
    why: 'ipv6_rcv drops everything on a device with disable_ipv6=1; neighbours still send their multicast',
    shapeFree: true,
    test: (s) => s.reason === 'IPV6DISABLED',
  },
];

const byId = new Map(BENIGN_RULES.map((r) => [r.id, r]));

export function benignRule(id: string): BenignRule | undefined {
  return byId.get(id);
}

/** The rule a drop with this shape matches, or null. */
export function classify(s: DropShape): BenignRule | null {
  for (const r of BENIGN_RULES) if (r.test(s)) return r;
  return null;
}

/** The rule a drop site matches from its reason and function alone (no packet seen), or null. */
export function classifySite(reason: string | null, fn: string | null): BenignRule | null {
  const s: DropShape = { reason, function: fn, ethertype: 0, l4proto: null, daddr: null, dport: null, icmpType: null };
  for (const r of BENIGN_RULES) if (r.shapeFree && r.test(s)) return r;
  return null;
}

/** What a folded benign class says about itself (Snapshot.benign, reports, diagnose). */
export interface FoldedClass {
  rule: string;
  title: string;
  total: number;
  interfaces: ReadonlyArray<{ key: string }>;
}

/**
 * The one line that stands for every folded benign drop, so nothing is hidden
 * silently: "41 drops of expected noise on 5 interfaces (--all shows them): 31 IPv6 …".
 */
export function benignLine(folds: readonly FoldedClass[], showFlag = '--all'): string | null {
  const total = folds.reduce((n, f) => n + f.total, 0);
  if (!total) return null;
  const ifaces = new Set(folds.flatMap((f) => f.interfaces.map((i) => i.key)));
  const classes = folds.map((f) => `${f.total} ${f.title}`).join('; ');
  // what to do comes before the list of classes, which may run past a narrow screen
  return `${total} drop${total === 1 ? '' : 's'} of expected noise on ${ifaces.size} interface${ifaces.size === 1 ? '' : 's'} (${showFlag} shows them): ${classes}`;
}
