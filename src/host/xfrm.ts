/**
 * IPsec (xfrm) as the kernel reports it per network namespace: the error counters of
 * /proc/net/xfrm_stat and the policies of `ip xfrm policy`. Pure parsers.
 */

/** /proc/net/xfrm_stat → "xfrm_stat:XfrmInPolBlock" → value (the keys model/counters.ts knows). */
export function parseXfrmStat(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(Xfrm\w+)\s+(\d+)\s*$/.exec(line.trim());
    if (m) out.set(`xfrm_stat:${m[1]}`, Number(m[2]));
  }
  return out;
}

/** One xfrm policy: its selector, direction, action and templates. */
export interface XfrmPolicy {
  src: string;
  dst: string;
  /** "tcp", "udp" … or null for any */
  proto: string | null;
  sport: number | null;
  dport: number | null;
  dev: string | null;
  dir: 'in' | 'out' | 'fwd' | string;
  action: 'allow' | 'block';
  /** the transforms a packet must have been through (in) or will get (out): "esp transport" */
  tmpls: string[];
  /** the selector line and direction as `ip xfrm policy` prints them */
  text: string;
}

export function parseXfrmPolicies(text: string): XfrmPolicy[] {
  const out: XfrmPolicy[] = [];
  let cur: XfrmPolicy | null = null;
  for (const line of text.split('\n')) {
    if (/^src /.test(line)) {
      const word = (k: string) => new RegExp(`\\b${k} (\\S+)`).exec(line)?.[1] ?? null;
      cur = {
        src: word('src') ?? '0.0.0.0/0',
        dst: word('dst') ?? '0.0.0.0/0',
        proto: word('proto'),
        sport: word('sport') !== null ? Number(word('sport')) : null,
        dport: word('dport') !== null ? Number(word('dport')) : null,
        dev: word('dev'),
        dir: '?',
        action: 'allow',
        tmpls: [],
        text: line.replace(/\s+uid \d+\s*$/, '').trim(),
      };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const dir = /^\s+dir (\S+)/.exec(line);
    if (dir) {
      cur.dir = dir[1];
      cur.action = /\baction block\b/.test(line) ? 'block' : 'allow';
      cur.text += ` dir ${cur.dir}${cur.action === 'block' ? ' action block' : ''}`;
      continue;
    }
    const tmpl = /^\s+proto (\S+) .*\bmode (\S+)/.exec(line);
    if (tmpl) cur.tmpls.push(`${tmpl[1]} ${tmpl[2]}`);
  }
  return out;
}
