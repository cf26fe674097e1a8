/** `droptrace export`: a recording's captured packets as pcapng for Wireshark/tshark. */
import { writeSync } from 'node:fs';
import { Command } from 'commander';
import { exportPcapng } from '../formats/export.js';
import { UsageError } from '../capture/filters.js';
import { damageNote } from '../formats/recording.js';
import { closeOutput, createOutput, fileError, openRecording } from './files.js';

export function exportCommand(): Command {
  return new Command('export')
    .description('write the packets captured in a recording (record --snaplen) as pcapng; each packet comment says where and why it was dropped')
    .argument('<file>', 'a recording made with droptrace record --snaplen N')
    .requiredOption('--pcapng <out>', 'the pcapng file to write (created with mode 0600), or - for standard output (e.g. | tshark -r -)')
    .option('--force', 'replace OUT if it exists')
    .addHelpText(
      'after',
      `
Example:
  droptrace export drops.dtr --pcapng drops.pcapng && tshark -r drops.pcapng -V | grep droptrace:`,
    )
    .action((file: string, opts: { pcapng: string; force?: boolean }) => {
      const reader = openRecording(file);
      if (!reader.meta.snaplen && !reader.tables.damage.metaMissing) throw new UsageError(`${file} holds no packet bytes: record it with --snaplen (e.g. --snaplen 128)`);
      const fd = createOutput(opts.pcapng, { force: opts.force, stdoutOk: true });
      let res;
      try {
        res = exportPcapng(reader, (chunk) => {
          try {
            for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
          } catch (err) {
            throw fileError(opts.pcapng, err, 'write');
          }
        });
      } finally {
        closeOutput(fd);
      }
      const damage = damageNote(reader.tables);
      const where = opts.pcapng === '-' ? 'standard output' : opts.pcapng;
      process.stderr.write(`droptrace: wrote ${res.packets} packets to ${where}${res.withoutData ? ` (${res.withoutData} drops had no packet header to capture)` : ''}\n`);
      if (damage) process.stderr.write(`droptrace: warning: ${file}: ${damage}\n`);
    });
}
