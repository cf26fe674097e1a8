/** Recording → pcapng: every captured packet, commented with where and why it died. Pure. */
import { PcapngBuilder } from './pcapng.js';
import { RecordedSymbols, recordingReasons, type Recording } from './recording.js';
import { formatSymbol } from './kallsyms.js';

export function recordingToPcapng(rec: Recording): { file: Buffer; packets: number; withoutData: number } {
  const syms = new RecordedSymbols(rec.symbols);
  const reasons = recordingReasons(rec.meta);
  const offset = BigInt(rec.meta.wallOffsetNs);
  const b = new PcapngBuilder(rec.meta.snaplen || 65535);
  let withoutData = 0;
  for (const d of rec.events) {
    if (!d.packet) {
      withoutData++;
      continue;
    }
    const sym = formatSymbol(syms.lookup(d.location), d.location);
    const reason = d.hasReason ? reasons.name(d.reason) : 'no reason (kernel < 5.17)';
    const ns = rec.netns.get(d.netns);
    b.add({
      timeNs: d.tsNs + offset,
      data: d.packet,
      origLen: d.origLen,
      capFrom: d.capFrom,
      ifname: d.ifname,
      netns: d.netns,
      netnsName: ns ?? null,
      comment: `droptrace: dropped at ${sym} (0x${d.location.toString(16)}) reason ${reason} on ${d.ifname || '?'} netns ${d.netns}${ns ? ` (${ns})` : ''} cpu ${d.cpu} comm ${d.comm}`,
    });
  }
  return { file: b.take(), packets: b.packets, withoutData };
}
