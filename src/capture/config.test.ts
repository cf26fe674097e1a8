import { describe, expect, it } from 'vitest';
import { checkConfig, CONFIG_KEYS, FILTER_KEYS, type TracerConfig } from './config.js';
import { loadAddon } from './native.js';

describe('the tracer config seam', () => {
  it('TypeScript and the addon name the same keys with the same types', () => {
    expect(loadAddon().configKeys()).toEqual({ ...CONFIG_KEYS });
  });

  it('the filter keys are config keys', () => {
    for (const k of FILTER_KEYS) expect(CONFIG_KEYS).toHaveProperty(k);
  });

  it('the addon refuses an unknown key and a value of the wrong type, instead of reading 0', () => {
    const { Tracer } = loadAddon() as unknown as { Tracer: new (c: object) => unknown };
    expect(() => new Tracer({ attach: 0, prot: 2483 })).toThrow(/unknown key "prot"/);
    expect(() => new Tracer({ attach: 0, port: '2483' })).toThrow(/port must be u32/);
    expect(() => new Tracer({ attach: 0, port: -1 })).toThrow(/port must be u32/);
    expect(() => new Tracer({ attach: 0, hostAddr: Buffer.alloc(4) })).toThrow(/hostAddr must be bytes/);
    expect(() => new Tracer({ attach: 0, include: [1, 'x'] })).toThrow(/include must be codes/);
  });

  it('checkConfig names the key that is unknown, mistyped or out of range', () => {
    const ok: TracerConfig = { attach: 1, ringBytes: 1 << 20, snaplen: 128, hotSlots: 16, port: 2483, include: [2, 3] };
    expect(checkConfig(ok)).toBe(ok);
    const bad = (c: object, re: RegExp) => expect(() => checkConfig(c as TracerConfig)).toThrow(re);
    bad({ attach: 1, prot: 1 }, /prot is not a key/);
    bad({ attach: 9 }, /attach 9 is not a value/);
    bad({ attach: 0, ringBytes: 5000 }, /ringBytes must be a power of two/);
    bad({ attach: 0, snaplen: 12 }, /snaplen must be a multiple of 8/);
    bad({ attach: 0, hotSlots: 3 }, /hotSlots must be 0 or a power of two/);
    bad({ attach: 0, port: 70000 }, /port must be 0\.\.65535/);
    bad({ attach: 0, port: 1.5 }, /port must be u32/);
    bad({ attach: 0, hostVersion: 4 }, /hostAddr and hostMask are needed/);
    bad({ attach: 0, ifname: 'a-very-long-interface' }, /ifname is longer/);
    bad({ attach: 0, exclude: [300] }, /exclude holds a reason code above 255/);
  });
});
