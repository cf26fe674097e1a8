/**
 * The decoder's offsets against the addon's offsetof()/sizeof() of the one
 * shared header (native/include/droptrace.h): the C and TS sides cannot
 * drift without this failing.
 */
import { describe, expect, it } from 'vitest';
import { CAP, COUNT_SIZE, CR, EVENT_SIZE, EV, FLAG, IFLAG, PATH_SIZE, PP, ST, STEP, STEP_FLAG, STEP_SIZE, TR, TRAP, TRAP_SIZE, TUNNEL } from '../model/decode.js';
import { ATTACH, PKT_PATH, SLOTS } from './config.js';
import { loadAddon } from './native.js';

describe('event layout', () => {
  const layout = loadAddon().layout();

  it('has the record sizes the decoder assumes', () => {
    expect(layout.eventSize).toBe(EVENT_SIZE);
    expect(layout.countSize).toBe(COUNT_SIZE);
    expect(layout.pathSize).toBe(PATH_SIZE);
    expect(layout.stepSize).toBe(STEP_SIZE);
    expect(layout.trapSize).toBe(TRAP_SIZE);
  });

  it('names the same fields on both sides', () => {
    expect(Object.keys(EV).sort()).toEqual(Object.keys(layout.event).sort());
    expect(Object.keys(CR).sort()).toEqual(Object.keys(layout.count).sort());
    expect(Object.keys(PP).sort()).toEqual(Object.keys(layout.path).sort());
    expect(Object.keys(ST).sort()).toEqual(Object.keys(layout.step).sort());
    expect(Object.keys(TR).sort()).toEqual(Object.keys(layout.trap).sort());
  });

  it.each([...Object.entries(PP).map(([k, v]) => ['dt_pkt_path', k, v] as const), ...Object.entries(ST).map(([k, v]) => ['dt_step', k, v] as const)])('%s.%s is at offset %i', (struct, name, offset) => {
    expect((struct === 'dt_step' ? layout.step : layout.path)[name][0]).toBe(offset);
  });

  it.each(Object.entries(EV))('dt_event.%s is at offset %i', (name, offset) => {
    expect(layout.event[name][0]).toBe(offset);
  });

  it.each(Object.entries(CR))('dt_count_rec.%s is at offset %i', (name, offset) => {
    expect(layout.count[name][0]).toBe(offset);
  });

  it.each(Object.entries(TR))('dt_trap_rec.%s is at offset %i', (name, offset) => {
    expect(layout.trap[name][0]).toBe(offset);
  });

  it('agrees on flag bits', () => {
    expect(layout.flags).toEqual(FLAG);
  });

  it.each([
    ['TUNNEL', TUNNEL],
    ['IFLAG', IFLAG],
    ['CAP', CAP],
    ['STEP', STEP],
    ['STEP_FLAG', STEP_FLAG],
    ['PKT_PATH', PKT_PATH],
    ['ATTACH', ATTACH],
    ['SLOTS', SLOTS],
    ['TRAP', TRAP],
  ])('agrees on every %s constant, both ways', (name, ts) => {
    expect(layout.constants[name]).toEqual({ ...ts });
  });
});
