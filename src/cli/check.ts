/** `droptrace check`: what this kernel offers, and which attach path would be used. */
import { Command } from 'commander';
import { localReasons } from '../capture/local.js';
import { DroptraceError } from '../capture/native.js';
import { gatherReport } from '../capture/probe.js';
import { formatReport } from '../views/check.js';

export function checkCommand(): Command {
  return new Command('check')
    .description('report what this kernel offers for drop tracing and which attach path would be used (exit 0 when tracing can work)')
    .option('--json', 'print the report as JSON')
    .option('--reasons', "list this kernel's drop reasons (code and name) instead")
    .option('-v, --verbose', "libbpf's log while each path is tried, and the verifier's log when one is refused")
    .action(async (opts: { json?: boolean; reasons?: boolean; verbose?: boolean }) => {
      if (opts.reasons) {
        const table = localReasons();
        if (opts.json) process.stdout.write(JSON.stringify({ source: table.source, reasons: table.entries() }) + '\n');
        else process.stdout.write(table.entries().map(([c, n]) => `${String(c).padStart(5)} ${n}`).join('\n') + '\n');
        return;
      }
      const report = await gatherReport(!!opts.verbose);
      process.stdout.write((opts.json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n');
      if (!report.ok) throw new DroptraceError(report.privileges.ok ? 'no attach path works on this kernel' : 'not enough privileges to trace', { phase: 'open' });
    });
}

