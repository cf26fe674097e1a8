/**
 * The exact counts over the last minute: a sample of every count key's packets each time the
 * kernel's counts are read, kept a little longer than the history window, for rates and the
 * per-second history of rows.
 */
import { HISTORY } from './snapshot.js';

export interface Sample {
  t: number;
  packets: Map<string, number>;
}

export class CountHistory {
  private samples: Sample[] = [];

  /** A sample of every key's packets (since the last clear) at time now (ms). */
  add(now: number, packets: Map<string, number>): void {
    this.samples.push({ t: now, packets });
    const horizon = now - (HISTORY + 2) * 1000;
    while (this.samples.length > 2 && this.samples[1].t < horizon) this.samples.shift();
  }

  get latest(): Sample | undefined {
    return this.samples[this.samples.length - 1];
  }

  /** The newest sample taken at or before t (or the oldest there is). */
  at(t: number): Sample | undefined {
    let found: Sample | undefined = this.samples[0];
    for (const s of this.samples) {
      if (s.t <= t) found = s;
      else break;
    }
    return found;
  }

  /** Starts again from one sample of these keys at zero. */
  clear(now: number, keys: Iterable<string>): void {
    this.samples = [{ t: now, packets: new Map([...keys].map((k) => [k, 0])) }];
  }
}
