import { describe, expect, it } from 'vitest';
import { addrBytes, inPrefix } from './addr.js';

describe('addresses', () => {
  it.each([
    ['10.244.1.2', '0af40102'],
    ['fd00:10:244:1::2', 'fd000010024400010000000000000002'],
    ['::ffff:10.0.0.1', '00000000000000000000ffff0a000001'],
    ['::', '00000000000000000000000000000000'],
    ['10.244.1', null],
    ['fe80::1%eth0', null],
  ])('%s → %s', (text, hex) => {
    expect(addrBytes(text)?.toString('hex') ?? null).toBe(hex);
  });

  it('holds addresses to prefixes of their own family only', () => {
    expect(inPrefix('10.244.2.7', '10.244.2.0', 24)).toBe(true);
    expect(inPrefix('10.244.3.7', '10.244.2.0', 24)).toBe(false);
    expect(inPrefix('10.244.3.7', '10.244.2.0', 23)).toBe(true);
    expect(inPrefix('10.9.9.9', '0.0.0.0', 0)).toBe(true);
    expect(inPrefix('fd00:10:244:1::2', 'fd00:10:244:1::', 64)).toBe(true);
    expect(inPrefix('fd00:10:244:1::2', '10.244.2.0', 24)).toBe(false);
    expect(inPrefix('::ffff:10.0.0.1', '10.0.0.0', 8)).toBe(false);
  });
});
