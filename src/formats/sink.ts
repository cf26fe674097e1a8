/**
 * Text written as bytes into one Buffer at a time and handed on in pieces
 * of about `size` bytes. For output that runs to hundreds of thousands of
 * lines a second (trace under a flood): no JS string per line means no
 * young-generation garbage, so the heap does not grow with the drop rate.
 * Writers check for room once per line (room()), never per byte.
 *
 * The consumer gives each piece back (done()) once it is written: the
 * buffers go round a small pool. Pieces left to the garbage collector
 * would be external memory, which V8 lets grow by tens of MB before it
 * collects.
 */
export class ByteSink {
  private buf: Buffer;
  private pos = 0;
  private readonly pool: Buffer[] = [];

  constructor(
    private readonly size: number,
    private readonly out: (piece: Buffer, done: () => void) => void,
    private readonly poolMax = 32,
  ) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /** Bytes written and not yet handed on. */
  get pending(): number {
    return this.pos;
  }

  /** Makes room for n more bytes, handing on what is written when it does not fit. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafeSlow(n);
  }

  /** Hands on what is written; its bytes stay as they are until the consumer calls done. */
  flush(): void {
    if (this.pos === 0) return;
    const whole = this.buf;
    const piece = whole.subarray(0, this.pos);
    this.buf = this.pool.pop() ?? Buffer.allocUnsafeSlow(this.size);
    this.pos = 0;
    let given = false;
    this.out(piece, () => {
      if (given) return;
      given = true;
      if (whole.length === this.size && this.pool.length < this.poolMax) this.pool.push(whole);
    });
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    if (n > 24) {
      this.buf.set(b, this.pos); // a call into the runtime: worth it only for longer pieces
      this.pos += n;
      return;
    }
    const d = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) d[p++] = b[i];
    this.pos = p;
  }

  /** Any text, as UTF-8, with room made for it: for the rare long pieces (a --path). */
  text(s: string): void {
    // written in place: a Buffer per piece would be memory outside the heap that GC frees late
    this.room(Buffer.byteLength(s, 'utf8'));
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  byte(c: number): void {
    this.buf[this.pos++] = c;
  }

  /** A string of char codes below 0x80 (names, addresses, digits). */
  ascii(s: string): void {
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A non-negative integer below 2^53 in decimal. */
  uint(n: number): void {
    const b = this.buf;
    if (n < 10) {
      b[this.pos++] = 48 + n;
      return;
    }
    if (n >= 0x80000000) {
      // above int32: split off the low 9 digits so the rest is small integer work
      const low = n % 1e9;
      this.uint((n - low) / 1e9);
      this.digits(low, 9);
      return;
    }
    let digits = 1;
    for (let t = n; t >= 10; t = (t / 10) | 0) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = (n / 10) | 0;
      b[--p] = 48 + n - q * 10;
      n = q;
    } while (n > 0);
  }

  /** n as exactly `width` digits, zero-padded (n < 10^width, n < 2^31). */
  digits(n: number, width: number): void {
    const b = this.buf;
    let p = this.pos + width;
    this.pos = p;
    for (let i = 0; i < width; i++) {
      const q = (n / 10) | 0;
      b[--p] = 48 + n - q * 10;
      n = q;
    }
  }

  spaces(n: number): void {
    for (let i = 0; i < n; i++) this.buf[this.pos++] = 32;
  }

  /**
   * A NUL-terminated field of at most max bytes read as latin1 (as the
   * decoder reads ifname and comm), written as the UTF-8 of those chars.
   * Needs room for 2 bytes per source byte. Returns the chars written (what
   * String.padEnd counts).
   */
  latin1(src: Buffer, off: number, max: number): number {
    const b = this.buf;
    let p = this.pos;
    let i = 0;
    for (; i < max; i++) {
      const c = src[off + i];
      if (c === 0) break;
      if (c < 0x80) b[p++] = c;
      else {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      }
    }
    this.pos = p;
    return i;
  }
}
