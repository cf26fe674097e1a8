/**
 * nftables rule sets as libnftables prints them: `nft -j list ruleset` for the structure
 * (chains with their hooks and policies, rules with their expressions, verdicts and
 * counters, named sets) and `nft -a list ruleset` for each rule's text as nft prints it.
 * Pure parsers; the commands run in the drop's namespace through NetnsShell.
 */

/** One expression of a rule, as libnftables' JSON schema has it (nft-json(5)). */
export type NftExpr = Record<string, unknown>;

export interface NftChain {
  family: string;
  table: string;
  name: string;
  /** base chains: the netfilter hook, its priority and the verdict when no rule decides */
  hook: string | null;
  prio: number | null;
  policy: 'accept' | 'drop' | null;
}

export interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  expr: NftExpr[];
  /** the rule's counter statement, when it has one */
  counter: { packets: number; bytes: number } | null;
  /** the verdict it ends in: drop and reject drop the packet */
  verdict: 'drop' | 'reject' | 'accept' | 'jump' | 'goto' | 'return' | 'continue' | 'queue' | null;
  /** made by iptables-nft (an xt match or target): iptables-save shows it */
  xt: boolean;
  /** the rule as `nft -a list ruleset` prints it, or null when the text was not read */
  text: string | null;
}

export interface NftRuleset {
  chains: NftChain[];
  rules: NftRule[];
  /** named sets: "family table name" → elements as the JSON has them */
  sets: Map<string, unknown[]>;
}

const VERDICTS = ['drop', 'reject', 'accept', 'jump', 'goto', 'return', 'continue', 'queue'] as const;

/** The key of a rule, shared by both listings and by the before/after snapshots. */
export function nftRuleKey(r: { family: string; table: string; chain: string; handle: number }): string {
  return `${r.family} ${r.table} ${r.chain} ${r.handle}`;
}

/** `nft -j list ruleset`, with rule texts from `nft -a list ruleset` when given. */
export function parseNftJson(json: string, text?: string | null): NftRuleset | null {
  let doc: { nftables?: Array<Record<string, Record<string, unknown>>> };
  try {
    doc = JSON.parse(json);
  } catch {
    return null;
  }
  if (!Array.isArray(doc.nftables)) return null;
  const texts = text ? parseNftText(text) : new Map<string, string>();
  const out: NftRuleset = { chains: [], rules: [], sets: new Map() };
  for (const item of doc.nftables) {
    if (item.chain) {
      const c = item.chain as Record<string, unknown>;
      out.chains.push({
        family: String(c.family),
        table: String(c.table),
        name: String(c.name),
        hook: typeof c.hook === 'string' ? c.hook : null,
        prio: typeof c.prio === 'number' ? c.prio : null,
        policy: c.policy === 'drop' || c.policy === 'accept' ? c.policy : null,
      });
    } else if (item.rule) {
      const r = item.rule as Record<string, unknown>;
      const expr = Array.isArray(r.expr) ? (r.expr as NftExpr[]) : [];
      const counter = expr.find((e) => e.counter && typeof e.counter === 'object')?.counter as { packets?: number; bytes?: number } | undefined;
      let verdict: NftRule['verdict'] = null;
      for (const e of expr) for (const v of VERDICTS) if (v in e) verdict = v;
      const rule = { family: String(r.family), table: String(r.table), chain: String(r.chain), handle: Number(r.handle) };
      out.rules.push({
        ...rule,
        expr,
        counter: counter && typeof counter.packets === 'number' ? { packets: counter.packets, bytes: counter.bytes ?? 0 } : null,
        verdict,
        xt: expr.some((e) => 'xt' in e),
        text: texts.get(nftRuleKey(rule)) ?? null,
      });
    } else if (item.set) {
      const s = item.set as Record<string, unknown>;
      out.sets.set(`${s.family} ${s.table} ${s.name}`, Array.isArray(s.elem) ? s.elem : []);
    }
  }
  return out;
}

/** `nft -a list ruleset` → rule key → the rule's text without its handle comment and counter values. */
export function parseNftText(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let family = '';
  let table = '';
  let chain = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    let m = /^table (\S+) (\S+) \{/.exec(line);
    if (m) {
      [family, table, chain] = [m[1], m[2], ''];
      continue;
    }
    m = /^chain (\S+) \{/.exec(line);
    if (m) {
      chain = m[1];
      continue;
    }
    m = /^(.*?)\s*# handle (\d+)$/.exec(line);
    if (m && chain && !/^(set|map|chain|flowtable|counter|quota|limit) /.test(line)) {
      out.set(nftRuleKey({ family, table, chain, handle: Number(m[2]) }), m[1].replace(/ counter packets \d+ bytes \d+/, ' counter'));
    }
  }
  return out;
}

/** Dropping nftables rules whose counters went up between two snapshots. */
export function movedNftDrops(before: NftRuleset, after: NftRuleset): Array<NftRule & { delta: number }> {
  const prev = new Map(before.rules.map((r) => [nftRuleKey(r), r.counter?.packets ?? 0]));
  return after.rules
    .filter((r) => (r.verdict === 'drop' || r.verdict === 'reject') && r.counter)
    .map((r) => ({ ...r, delta: r.counter!.packets - (prev.get(nftRuleKey(r)) ?? 0) }))
    .filter((r) => r.delta > 0)
    .sort((a, b) => b.delta - a.delta);
}

/** How a person finds the rule: "inet filter input: tcp dport 2483 drop (handle 12)". */
export function nftRuleLabel(r: NftRule): string {
  return `${r.family} ${r.table} ${r.chain}: ${r.text ?? `rule ${r.verdict ?? ''}`.trim()} (handle ${r.handle})`;
}

/** nftables' own tables: those iptables-nft made (the tables iptables-save lists, rules with xt expressions) left out. */
export function nativeNft(rs: NftRuleset, iptablesTables: ReadonlySet<string>): NftRuleset {
  const own = (x: { family: string; table: string }) => !iptablesTables.has(`${x.family} ${x.table}`);
  return { chains: rs.chains.filter(own), rules: rs.rules.filter((r) => own(r) && !r.xt), sets: rs.sets };
}
