/**
 * struct dt_settings: the table of settings.ts against the struct as the program's BTF
 * describes it (both ways), and the bytes the encoder writes at the struct's own offsets.
 */
import { describe, expect, it } from 'vitest';
import { settingsLayout } from './native.js';
import { DEFAULT_GENEVE_PORTS, DEFAULT_VXLAN_PORTS, SLOTS } from './config.js';
import { encodeSettings, SETTINGS, type SettingsInput } from './settings.js';

describe('struct dt_settings', () => {
  const layout = settingsLayout();
  const at = (member: string) => layout.fields[member][0];
  const encode = (c: Omit<SettingsInput, 'attach'>) => encodeSettings({ attach: 0, ...c }, layout);

  it('settings.ts fills every member of the C struct, and only those', () => {
    expect(Object.keys(SETTINGS).sort()).toEqual(Object.keys(layout.fields).sort());
  });

  it('the command line\'s slot counts are the struct\'s', () => {
    expect(layout.fields.include_hi[2]).toBe(SLOTS.subsystemReasons);
    expect(layout.fields.exclude_hi[2]).toBe(SLOTS.subsystemReasons);
    expect(layout.fields.vxlan_ports[2]).toBe(SLOTS.tunnelPorts);
    expect(layout.fields.geneve_ports[2]).toBe(SLOTS.tunnelPorts);
  });

  it('the struct has no implicit padding: members follow each other up to its size', () => {
    const spans = Object.values(layout.fields).map(([o, size, n]) => [o, o + size * n]).sort((a, b) => a[0] - b[0]);
    let end = 0;
    for (const [o, e] of spans) {
      expect(o).toBe(end);
      end = e;
    }
    expect(end).toBe(layout.size);
    expect(layout.size % 8).toBe(0);
  });

  it('writes each value at its member, defaults included', () => {
    const host = Buffer.alloc(16);
    host.set([10, 244, 1, 2]);
    const b = encode({ emitEvents: true, port: 2483, netns: 4026531840, ifname: 'cni0', include: [2, 3, 255, 65538], hostVersion: 4, hostAddr: host, wakeupBytes: 65536, snaplen: 128, stack: true });
    expect(b.readUInt16LE(at('port'))).toBe(2483);
    expect(b.readUInt32LE(at('netns'))).toBe(4026531840);
    expect(b.subarray(at('ifname'), at('ifname') + 5)).toEqual(Buffer.from('cni0\0'));
    expect(b.readUInt8(at('has_ifname'))).toBe(1);
    expect(b.readBigUInt64LE(at('include'))).toBe(0b1100n);
    expect(b.readBigUInt64LE(at('include') + 24)).toBe(1n << 63n);
    expect(b.readUInt32LE(at('include_hi'))).toBe(65538);
    expect(b.readUInt8(at('has_include'))).toBe(1);
    expect(b.readUInt8(at('has_exclude'))).toBe(0);
    expect(b.subarray(at('host_addr'), at('host_addr') + 4)).toEqual(Buffer.from([10, 244, 1, 2]));
    expect(b.readUInt8(at('host_ver'))).toBe(4);
    expect(b.readBigUInt64LE(at('wakeup_bytes'))).toBe(65536n);
    expect(b.readUInt32LE(at('snaplen'))).toBe(128);
    expect([b.readUInt8(at('emit_events')), b.readUInt8(at('stack'))]).toEqual([1, 1]);
    expect([0, 1].map((i) => b.readUInt16LE(at('vxlan_ports') + 2 * i))).toEqual([...DEFAULT_VXLAN_PORTS]);
    expect(b.readUInt16LE(at('geneve_ports'))).toBe(DEFAULT_GENEVE_PORTS[0]);
    expect([b.readUInt8(at('hot')), b.readUInt32LE(at('hot_mask'))]).toEqual([1, 255]);
  });

  it('hot slots off, and the tunnel ports replaced', () => {
    const b = encode({ emitEvents: false, hotSlots: 0, vxlanPorts: [4790] });
    expect([b.readUInt8(at('hot')), b.readUInt32LE(at('hot_mask'))]).toEqual([0, 0]);
    expect([0, 1].map((i) => b.readUInt16LE(at('vxlan_ports') + 2 * i))).toEqual([4790, 0]);
  });

  it('a list longer than its member holds is refused, naming the key', () => {
    const hi = Array.from({ length: layout.fields.include_hi[2] + 1 }, (_, i) => 65536 + i);
    expect(() => encode({ emitEvents: false, include: hi })).toThrow(/tracer config: include holds 9 values; the program holds at most 8/);
    expect(() => encode({ emitEvents: false, genevePorts: [1, 2, 3, 4, 5] })).toThrow(/tracer config: genevePorts holds 5 values/);
  });
});
