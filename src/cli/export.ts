/** `droptrace export`: a recording's captured packets as pcapng for Wireshark/tshark. */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { recordingToPcapng } from '../export.js';
import { UsageError } from '../filters.js';
import { openRecording } from './files.js';

export function exportCommand(): Command {
  return new Command('export')
    .description('write the packets captured in a recording (record --snaplen) as pcapng; each packet comment says where and why it was dropped')
    .argument('<file>', 'a recording made with droptrace record --snaplen N')
    .requiredOption('--pcapng <out>', 'the pcapng file to write')
    .action((file: string, opts: { pcapng: string }) => {
      const rec = openRecording(file);
      if (!rec.meta.snaplen) throw new UsageError(`${file} holds no packet bytes: record it with --snaplen (e.g. --snaplen 128)`);
      const pc = recordingToPcapng(rec);
      writeFileSync(opts.pcapng, pc.file, { mode: 0o600 });
      process.stderr.write(`droptrace: wrote ${pc.packets} packets to ${opts.pcapng}${pc.withoutData ? ` (${pc.withoutData} drops had no packet header to capture)` : ''}\n`);
    });
}
