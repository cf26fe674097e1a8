/**
 * iptables and ip6tables rule counters, from `iptables-save -c` and `ip6tables-save -c`
 * (iptables-nft and legacy alike: both print the same format). Pure parsers; the commands
 * run in the drop's namespace through NetnsShell.
 */

/** One rule (or chain policy) from `iptables-save -c` or `ip6tables-save -c`, with its counters. */
export interface RuleCounter {
  /** which tool printed it: the IPv4 or the IPv6 rule set */
  tool: 'iptables' | 'ip6tables';
  table: string;
  /** the rule as the tool prints it, without counters ("-A INPUT -p tcp … -j DROP"), or "policy FORWARD DROP" */
  rule: string;
  packets: number;
  bytes: number;
  /** the rule or policy drops or rejects */
  drops: boolean;
}

export function parseIptablesSave(text: string, tool: RuleCounter['tool'] = 'iptables'): RuleCounter[] {
  const out: RuleCounter[] = [];
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    let m = /^:(\S+) (\S+) \[(\d+):(\d+)\]/.exec(line);
    if (m) {
      if (m[2] !== '-') out.push({ tool, table, rule: `policy ${m[1]} ${m[2]}`, packets: Number(m[3]), bytes: Number(m[4]), drops: m[2] === 'DROP' });
      continue;
    }
    m = /^\[(\d+):(\d+)\] (-A .*)$/.exec(line);
    if (m) out.push({ tool, table, rule: m[3], packets: Number(m[1]), bytes: Number(m[2]), drops: /-j (DROP|REJECT)\b/.test(m[3]) });
  }
  return out;
}

/** The tables each tool's rule set has: iptables-nft's tables are not nftables' own. */
export function iptablesTables(rules: readonly RuleCounter[]): Set<string> {
  return new Set(rules.map((r) => `${r.tool === 'iptables' ? 'ip' : 'ip6'} ${r.table}`));
}

/** How a person names the rule: "filter -A INPUT …", "ip6tables filter policy INPUT DROP". */
export function ruleLabel(r: RuleCounter): string {
  return `${r.tool === 'ip6tables' ? 'ip6tables ' : ''}${r.table} ${r.rule}`;
}

/** Dropping rules whose packet counters went up between two snapshots. */
export function movedDropRules(before: readonly RuleCounter[], after: readonly RuleCounter[]): Array<RuleCounter & { delta: number }> {
  const key = (r: RuleCounter) => `${r.tool} ${r.table} ${r.rule}`;
  const prev = new Map(before.map((r) => [key(r), r.packets]));
  return after
    .filter((r) => r.drops)
    .map((r) => ({ ...r, delta: r.packets - (prev.get(key(r)) ?? 0) }))
    .filter((r) => r.delta > 0)
    .sort((a, b) => b.delta - a.delta);
}
