/**
 * Loss said while it happens: once a second, when events were lost in that
 * second, one line on stderr with how many, and the --sample that would
 * have fitted what the reader delivered. Counts stay exact either way; the
 * closing summary gives the totals.
 */
import type { CaptureRun, Consumer } from '../capture/run.js';

export function lossReporter(getRun: () => CaptureRun, write: (line: string) => void): Consumer {
  let lost = 0;
  let delivered = 0;
  return {
    events: false,
    tick() {
      const run = getRun();
      const s = run.stats();
      const nowLost = s.lost + s.droppedInProcess;
      const dl = nowLost - lost;
      const dd = s.delivered - delivered;
      lost = nowLost;
      delivered = s.delivered;
      if (dl <= 0) return;
      // one event in N of what was offered would have fitted in what got through
      const sample = (run.config.sample ?? 1) * Math.ceil((dd + dl) / Math.max(1, dd));
      write(`droptrace: ${dl} events lost in the last second (${dd} delivered): the reader cannot keep up with this flood; counts stay exact; --sample ${sample} would fit`);
    },
  };
}
