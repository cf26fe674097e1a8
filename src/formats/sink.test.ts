import { describe, expect, it } from 'vitest';
import { ByteSink } from './sink.js';

const collect = (size: number) => {
  const pieces: Buffer[] = [];
  return { pieces, sink: new ByteSink(size, (b) => pieces.push(b)), text: () => Buffer.concat(pieces).toString('utf8') };
};

describe('ByteSink', () => {
  it('writes integers as String() does, up to 2^53', () => {
    const { sink, text } = collect(1 << 16);
    const ns = [0, 1, 9, 10, 99, 100, 65535, 4294967295, 4294967296, 1e15, 2 ** 53 - 1];
    for (let k = 0; k < 1000; k++) ns.push(Math.floor(Math.random() * 2 ** (1 + (k % 53))));
    for (const n of ns) {
      sink.room(20);
      sink.uint(n);
      sink.byte(10);
    }
    sink.flush();
    expect(text()).toBe(ns.map((n) => `${n}\n`).join(''));
  });

  it('pads digits to a width', () => {
    const { sink, text } = collect(64);
    sink.digits(7, 3);
    sink.digits(42, 3);
    sink.digits(999, 3);
    sink.digits(0, 2);
    sink.flush();
    expect(text()).toBe('00704299900');
  });

  it('writes a record field as the UTF-8 of its latin1 chars, byte by byte, and stops at NUL', () => {
    for (let c = 1; c < 256; c++) {
      const { sink, text } = collect(64);
      expect(sink.latin1(Buffer.from([0x61, c, 0x62, 0, 0x63]), 0, 5)).toBe(3);
      sink.flush();
      expect(text()).toBe(String.fromCharCode(0x61, c, 0x62));
    }
  });

  it('reads at most max bytes of a field without a NUL', () => {
    const { sink, text } = collect(64);
    expect(sink.latin1(Buffer.from('abcdefgh'), 2, 4)).toBe(4);
    sink.flush();
    expect(text()).toBe('cdef');
  });

  it('hands on whole pieces when a line does not fit, and never writes into a piece again', () => {
    const { sink, pieces, text } = collect(16);
    const lines: string[] = [];
    for (let k = 0; k < 50; k++) {
      const line = `line ${k} ${'x'.repeat(k % 7)}\n`;
      lines.push(line);
      sink.room(line.length);
      sink.ascii(line);
    }
    const first = Buffer.from(pieces[0]);
    sink.room(40); // bigger than a piece: a bigger buffer, once
    sink.ascii('a line longer than the sixteen bytes\n');
    lines.push('a line longer than the sixteen bytes\n');
    sink.flush();
    expect(pieces[0].equals(first)).toBe(true);
    expect(pieces.every((p) => p.length > 0)).toBe(true);
    expect(text()).toBe(lines.join(''));
    expect(sink.pending).toBe(0);
  });

  it("reuses a piece's memory once the consumer is done with it, and only then", () => {
    const held: Array<{ piece: Buffer; done: () => void }> = [];
    const sink = new ByteSink(32, (piece, done) => held.push({ piece, done }));
    sink.room(10);
    sink.ascii('first one\n');
    sink.flush();
    sink.room(10);
    sink.ascii('second on\n');
    sink.flush();
    expect(held[1].piece.buffer).not.toBe(held[0].piece.buffer); // the first is still held
    held[0].done();
    held[0].done(); // twice is harmless
    for (const line of ['third one\n', 'fourth on\n']) {
      sink.room(10);
      sink.ascii(line);
      sink.flush();
    }
    // the third was written in the buffer taken at the second flush; the fourth in the first's
    expect(held[2].piece.buffer).not.toBe(held[0].piece.buffer);
    expect(held[3].piece.buffer).toBe(held[0].piece.buffer);
    expect(held.slice(1).map((h) => h.piece.toString())).toEqual(['second on\n', 'third one\n', 'fourth on\n']);
  });
});
