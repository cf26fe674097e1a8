/**
 * What a window compares in a namespace, before and after: its drop counters (SNMP/netstat,
 * xfrm_stat, rtnetlink stats64, qdiscs, ethtool -S) and its rule sets with their counters
 * (iptables, ip6tables, nftables' own tables). Every read of a snapshot goes out at once.
 */
import { spawnSync } from 'node:child_process';
import { parseEthtoolStats, parseLinkStats, parseQdiscDrops } from './devices.js';
import { iptablesTables, parseIptablesSave, type RuleCounter } from './iptables.js';
import { parseSnmp, type NetnsShell } from './netns.js';
import { nativeNft, parseNftJson, type NftRuleset } from './nft.js';
import { parseXfrmStat } from './xfrm.js';

/** What we snapshot in a namespace before and after the window. */
export interface NsSnapshot {
  /** SNMP/netstat counters ("TcpExt:ListenOverflows"), the devices' drop counters and xfrm_stat (model/counters.ts keys) */
  counters: Map<string, number>;
  /** iptables and ip6tables rules with counters; null when not read (or neither tool is installed) */
  iptables: RuleCounter[] | null;
  /** nftables' own tables, iptables-nft's left out; null when not read or nft is not installed */
  nft: NftRuleset | null;
}

const tools = new Map<string, boolean>();
/** Whether a tool is installed here (asked once). */
export function hasTool(name: string, arg = '--version'): boolean {
  let v = tools.get(name);
  if (v === undefined) tools.set(name, (v = spawnSync(name, [arg], { stdio: 'ignore' }).status === 0));
  return v;
}

/** The namespace's drop counters: SNMP/netstat, rtnetlink stats64, qdiscs, ethtool -S where the driver offers it, xfrm_stat. */
export async function readCounters(sh: NetnsShell): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const [snmp, netstat, xfrm, linkJson, qdiscJson] = await Promise.all([
    sh.readAsync('/proc/net/snmp'),
    sh.readAsync('/proc/net/netstat'),
    sh.readAsync('/proc/net/xfrm_stat'),
    sh.runAsync(['ip', '-s', '-s', '-j', 'link', 'show']),
    sh.runAsync(['tc', '-s', '-j', 'qdisc', 'show']),
  ]);
  for (const t of [snmp, netstat]) if (t) for (const [k, v] of parseSnmp(t)) out.set(k, v);
  if (xfrm) for (const [k, v] of parseXfrmStat(xfrm)) out.set(k, v);
  const links = parseLinkStats(linkJson ?? '[]');
  for (const [k, v] of links) out.set(k, v);
  for (const [k, v] of parseQdiscDrops(qdiscJson ?? '[]')) out.set(k, v);
  if (hasTool('ethtool')) {
    const ifaces = [...links.keys()].filter((k) => k.endsWith(':rx_dropped')).map((k) => k.split(':')[1]).filter((i) => i !== 'lo');
    const stats = await Promise.all(ifaces.map((i) => sh.runAsync(['ethtool', '-S', i])));
    ifaces.forEach((iface, n) => {
      for (const [k, v] of parseEthtoolStats(iface, stats[n] ?? '')) out.set(k, v);
    });
  }
  return out;
}

/** iptables and ip6tables rules with their counters; null when neither tool answers. */
export async function readIptables(sh: NetnsShell): Promise<RuleCounter[] | null> {
  const [v4, v6] = await Promise.all([sh.runAsync(['iptables-save', '-c']), sh.runAsync(['ip6tables-save', '-c'])]);
  if (v4 === null && v6 === null) return null;
  return [...parseIptablesSave(v4 ?? '', 'iptables'), ...parseIptablesSave(v6 ?? '', 'ip6tables')];
}

/**
 * nftables' own tables with their counters; null without nft. texts: also each rule's text as
 * nft prints it (a second listing), which only what is shown needs, not a snapshot.
 */
export async function readNft(sh: NetnsShell, iptables: Promise<readonly RuleCounter[] | null>, texts: boolean): Promise<NftRuleset | null> {
  if (!hasTool('nft')) return null;
  const [json, text, ipt] = await Promise.all([sh.runAsync(['nft', '-j', 'list', 'ruleset']), texts ? sh.runAsync(['nft', '-a', 'list', 'ruleset']) : null, iptables]);
  const rs = parseNftJson(json ?? '', text);
  return rs ? nativeNft(rs, iptablesTables(ipt ?? [])) : null;
}

/** rules: false leaves out the rule sets (the counters alone: a running view's periodic read). */
export async function snapshotNetns(sh: NetnsShell, opts: { rules?: boolean } = {}): Promise<NsSnapshot> {
  if (opts.rules === false) return { counters: await readCounters(sh), iptables: null, nft: null };
  const iptables = readIptables(sh);
  const [counters, ipt, nft] = await Promise.all([readCounters(sh), iptables, readNft(sh, iptables, false)]);
  return { counters, iptables: ipt, nft };
}
