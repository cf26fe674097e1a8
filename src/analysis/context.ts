/** What a table row says about its drops, in the terms the hints are filled with. */
import { filledHint, formatHint, nsPrefix, type DropContext } from '../model/hints.js';
import type { GroupBy, GroupRow } from './snapshot.js';

/** What a table row says about its drops: its own key, else the top entry of each list. */
export function rowContext(row: GroupRow, group: GroupBy): DropContext {
  const pick = (g: GroupBy, list: { key: string }[]) => (group === g ? row.key : list[0]?.key) ?? null;
  const loc = group === 'location' ? row.key : group === 'function' ? row.key : (row.locations[0]?.key ?? null);
  const nsLabel = pick('netns', row.netns);
  const nsName = nsLabel ? /\((.+)\)$/.exec(nsLabel)?.[1] : undefined;
  return {
    reason: pick('reason', row.reasons),
    function: loc ? loc.replace(/\+0x[0-9a-f]+$/, '') : null,
    ifname: pick('interface', row.interfaces),
    nsPrefix: nsPrefix(nsName),
    l4: row.flow?.l4 ?? null,
    saddr: row.flow?.saddr ?? null,
    daddr: row.flow?.daddr ?? null,
    dport: row.flow?.dport ?? null,
  };
}

/** The explanation of a row's drops, for the live detail view. */
export function rowHint(row: GroupRow, group: GroupBy): string | null {
  const h = filledHint(rowContext(row, group));
  return h ? formatHint(h) : null;
}

/** One line that says what the top row is and what to check first: "REASON at SITE on IFACE: title. Next: command". */
export function rowVerdict(row: GroupRow, group: GroupBy): string | null {
  const ctx = rowContext(row, group);
  const h = filledHint(ctx);
  if (!h) return null;
  const where = [ctx.function && row.locations[0]?.key, ctx.ifname && `on ${ctx.ifname}`].filter(Boolean).join(' ');
  return `${ctx.reason ?? 'drop'}${where ? ` at ${where}` : ''}: ${h.title}${h.checks[0] ? `. Next: ${h.checks[0]}` : ''}`;
}
