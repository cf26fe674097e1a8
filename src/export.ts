/**
 * Recording → pcapng: every captured packet, commented with where and why it
 * died. Streams: one block of events at a time goes out through `write`.
 */
import { formatSymbol } from './kallsyms.js';
import { PcapngBuilder } from './pcapng.js';
import { RecordedSymbols, recordingReasons, type RecordingReader } from './recording.js';

export interface ExportResult {
  packets: number;
  /** drops recorded without packet bytes (no header could be captured) */
  withoutData: number;
}

export function exportPcapng(reader: RecordingReader, write: (chunk: Buffer) => void): ExportResult {
  const t = reader.tables;
  const syms = new RecordedSymbols(t.symbols);
  const reasons = recordingReasons(t.meta);
  const offset = BigInt(t.meta.wallOffsetNs);
  const b = new PcapngBuilder(t.meta.snaplen || 65535);
  let withoutData = 0;
  for (const it of reader.items()) {
    if (it.kind !== 'events') continue;
    for (const d of it.drops) {
      if (!d.packet) {
        withoutData++;
        continue;
      }
      const sym = formatSymbol(syms.lookup(d.location), d.location);
      const reason = d.hasReason ? reasons.name(d.reason) : 'no reason (kernel < 5.17)';
      const ns = t.netns.get(d.netns);
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
    const chunk = b.take();
    if (chunk.length) write(chunk);
  }
  // the section header at least: a file with no packet reads as empty, not as broken
  const rest = b.take();
  if (rest.length) write(rest);
  return { packets: b.packets, withoutData };
}
