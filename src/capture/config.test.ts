import { describe, expect, it } from 'vitest';
import { checkConfig, CONFIG_KEYS, FILTER_KEYS, type TracerConfig } from './config.js';
import { loadAddon, settingsLayout } from './native.js';
import { encodeSettings } from './settings.js';

describe('the tracer config seam', () => {
  it('the filter keys are config keys', () => {
    for (const k of FILTER_KEYS) expect(CONFIG_KEYS).toHaveProperty(k);
  });

  it('the addon refuses an unknown key, a value of the wrong type, and settings of another size, instead of reading 0', () => {
    const { Tracer } = loadAddon() as unknown as { Tracer: new (c: object, cb?: () => void) => unknown };
    const settings = encodeSettings({ attach: 0, emitEvents: false }, settingsLayout());
    expect(() => new Tracer({ attach: 0, settings, prot: 2483 })).toThrow(/unknown key "prot"/);
    expect(() => new Tracer({ attach: '0', settings })).toThrow(/attach must be a u32/);
    expect(() => new Tracer({ attach: 0, ringBytes: -1, settings })).toThrow(/ringBytes must be a u32/);
    expect(() => new Tracer({ attach: 0, settings: Buffer.alloc(8) })).toThrow(new RegExp(`settings must be a Buffer of ${settingsLayout().size} bytes`));
    expect(() => new Tracer({ attach: 0 })).toThrow(/settings is required/);
    // events are wanted exactly when there is someone to hand them to
    expect(() => new Tracer({ attach: 0, settings }, () => {})).toThrow(/emit_events must be set exactly when a batch callback is given/);
  });

  it('checkConfig names the key that is unknown, mistyped or out of range', () => {
    const ok: TracerConfig = { attach: 1, ringBytes: 1 << 20, snaplen: 128, hotSlots: 16, port: 2483, include: [2, 3], exclude: [65538] };
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
    bad({ attach: 0, include: [-1] }, /include must be codes/);
  });
});
