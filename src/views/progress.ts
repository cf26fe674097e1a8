/**
 * The one-line progress of a recording on a terminal, redrawn every tick,
 * and the closing line every run prints, terminal or not.
 */
import type { CaptureRun, CaptureSummary, Consumer } from '../capture/run.js';
import type { Recorder } from '../formats/recorder.js';

export function recordingProgress(getRun: () => CaptureRun, recorder: Recorder, output: string, tty: boolean): Consumer {
  const started = Date.now();
  return {
    events: false,
    tick() {
      if (!tty) return;
      const run = getRun();
      const s = run.stats();
      const exact = run.counts().reduce((n, r) => n + r.packets, 0);
      const secs = (Date.now() - started) / 1000;
      process.stderr.write(
        `\r\x1b[Kdroptrace: ${secs.toFixed(0)}s  drops ${exact}  ${(exact / Math.max(secs, 0.001)).toFixed(1)}/s  events ${recorder.written}  lost ${s.lost + s.droppedInProcess}  ${(recorder.bytes / 1024).toFixed(0)} KiB`,
      );
    },
    finish(s: CaptureSummary) {
      if (tty) process.stderr.write('\n');
      const lost = s.stats.lost + s.stats.droppedInProcess;
      process.stderr.write(`droptrace: recorded ${recorder.written} events (${s.stats.delivered} delivered, ${lost} lost; the kernel counted ${s.exact}) in ${(recorder.bytes / 1024).toFixed(1)} KiB to ${output}\n`);
    },
  };
}
