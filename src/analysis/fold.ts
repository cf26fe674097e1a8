/**
 * Folds a batch of raw event records (struct dt_event, as the addon delivers
 * them) into per-flow counts without decoding each record: the live view's
 * path under a flood. A record is identified by the words that make its flow
 * row (location, reason, interface, netns, protocol, addresses, destination
 * port, interface name, a tunnelled packet's inner flow, and the receiving socket); records with the same words share one entry, found
 * through an open-addressing hash table over 32-bit reads of the batch.
 * Only the first record of a new entry is decoded. Pure: no kernel, no clock.
 */
import { decodeEvent, EV, EVENT_SIZE, FLAG, type RawDrop } from '../model/decode.js';

/** One flow of one kernel count key, with what the current segment added to it. */
export interface FoldEntry {
  /** the first record seen of it, decoded */
  readonly drop: RawDrop;
  /** drops and bytes in the segment being reported */
  count: number;
  bytes: number;
  /** index in the batch of its newest record in the segment */
  last: number;
}

/** Receives one segment: the entries it touched (count > 0) and its wall-clock second. */
export type FoldSink = (entries: readonly FoldEntry[], wallMsOf: (index: number) => number) => void;

/** 32-bit words of a record that make its identity, as word offsets into the record. */
const W = {
  tsLo: EV.ts_ns / 4,
  tsHi: EV.ts_ns / 4 + 1,
  locLo: EV.location / 4,
  locHi: EV.location / 4 + 1,
  reason: EV.reason / 4,
  len: EV.len / 4,
  ifindex: EV.ifindex / 4,
  netns: EV.netns / 4,
  proto: EV.ethertype / 4, // ethertype, l4proto, ipver
  ports: EV.sport / 4, // sport (low half), dport (high half)
  flags: EV.tcp_flags / 4, // flags is the top byte
  saddr: EV.saddr / 4, // 4 words, then daddr's 4
  ifname: EV.ifname / 4, // 4 words
  innerAddr: EV.inner_saddr / 4, // 4 words, then inner daddr's 4
  vni: EV.tunnel_id / 4,
  innerPorts: EV.inner_sport / 4, // inner sport (low half), dport (high half)
  tunnel: EV.tunnel / 4, // tunnel, inner ipver, l4proto, flags
  skCgroup: EV.sk_cgroup / 4, // 2 words
  skIno: EV.sk_ino / 4,
  skPort: EV.sk_port / 4, // port (low half), family, protocol
} as const;
/**
 * identity words: 20 of the record itself, 11 of a tunnelled packet's inner flow, 4 of the
 * receiving socket (0 when none)
 */
const KEY = 35;
const MAX_ENTRIES = 1 << 16;

export class BatchFolder {
  private slots = new Int32Array(1024);
  private keys = new Int32Array(1024 * KEY);
  private entries: FoldEntry[] = [];
  private readonly key = new Int32Array(KEY);
  private aligned: Buffer | null = null;

  /** Distinct entries remembered (bounded: the table starts over past 65,536). */
  get size(): number {
    return this.entries.length;
  }

  /**
   * Folds count records of stride bytes. sink is called once per wall-clock
   * second the batch spans (usually once), with the entries that second touched.
   */
  fold(buf: Buffer, stride: number, count: number, wallOffsetMs: number, sink: FoldSink): void {
    if (stride % 4 || stride < EVENT_SIZE) throw new Error(`record size ${stride} is not a whole number of 32-bit words`);
    if (this.entries.length >= MAX_ENTRIES) this.reset();
    const src = this.alignedView(buf, stride * count);
    const w = new Int32Array(src.buffer, src.byteOffset, (stride * count) >> 2);
    const sw = stride >> 2;
    const k = this.key;
    const touched: FoldEntry[] = [];
    const wallMsOf = (i: number) => Math.floor(wallNs(w, i * sw) / 1e6 + wallOffsetMs);
    let sec = NaN;

    for (let i = 0; i < count; i++) {
      const o = i * sw;
      const s = Math.floor((wallNs(w, o) / 1e6 + wallOffsetMs) / 1000);
      if (s !== sec) {
        if (touched.length) this.flush(touched, wallMsOf, sink);
        sec = s;
      }
      const flags = w[o + W.flags] >>> 24;
      k[0] = w[o + W.locLo];
      k[1] = w[o + W.locHi];
      k[2] = flags & FLAG.REASON ? w[o + W.reason] : 0;
      k[3] = w[o + W.ifindex];
      k[4] = w[o + W.netns];
      k[5] = w[o + W.proto];
      k[6] = flags & FLAG.L4 ? w[o + W.ports] >>> 16 : 0;
      k[7] = flags & (FLAG.L3 | FLAG.L4);
      let h = 0x811c9dc5;
      for (let j = 0; j < 8; j++) h = Math.imul(h ^ k[j], 0x01000193);
      for (let j = 0; j < 8; j++) h = Math.imul(h ^ (k[8 + j] = w[o + W.saddr + j]), 0x01000193);
      for (let j = 0; j < 4; j++) h = Math.imul(h ^ (k[16 + j] = w[o + W.ifname + j]), 0x01000193);
      const tun = w[o + W.tunnel];
      if (tun & 0xff) {
        h = Math.imul(h ^ (k[20] = tun), 0x01000193);
        h = Math.imul(h ^ (k[21] = w[o + W.vni]), 0x01000193);
        h = Math.imul(h ^ (k[22] = w[o + W.innerPorts] >>> 16), 0x01000193);
        for (let j = 0; j < 8; j++) h = Math.imul(h ^ (k[23 + j] = w[o + W.innerAddr + j]), 0x01000193);
      } else k.fill(0, 20, 31);
      if (flags & FLAG.RX_SK) {
        h = Math.imul(h ^ (k[31] = w[o + W.skCgroup]), 0x01000193);
        h = Math.imul(h ^ (k[32] = w[o + W.skCgroup + 1]), 0x01000193);
        h = Math.imul(h ^ (k[33] = w[o + W.skIno]), 0x01000193);
        h = Math.imul(h ^ (k[34] = w[o + W.skPort]), 0x01000193);
      } else k.fill(0, 31);
      h ^= h >>> 15;

      const e = this.find(h, k) ?? this.insert(h, k, src, i, stride);
      if (e.count === 0) touched.push(e);
      e.count++;
      e.bytes += w[o + W.len] >>> 0;
      e.last = i;
    }
    if (touched.length) this.flush(touched, wallMsOf, sink);
  }

  private flush(touched: FoldEntry[], wallMsOf: (i: number) => number, sink: FoldSink): void {
    sink(touched, wallMsOf);
    for (const e of touched) {
      e.count = 0;
      e.bytes = 0;
    }
    touched.length = 0;
  }

  private find(h: number, k: Int32Array): FoldEntry | undefined {
    const mask = this.slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const idx = this.slots[s] - 1;
      if (idx < 0) return undefined;
      const base = idx * KEY;
      let j = 0;
      while (j < KEY && this.keys[base + j] === k[j]) j++;
      if (j === KEY) return this.entries[idx];
    }
  }

  private insert(h: number, k: Int32Array, buf: Buffer, i: number, stride: number): FoldEntry {
    if ((this.entries.length + 1) * 2 > this.slots.length) this.grow();
    const idx = this.entries.length;
    const e: FoldEntry = { drop: decodeEvent(buf, i, stride), count: 0, bytes: 0, last: i };
    this.entries.push(e);
    if (this.keys.length < (idx + 1) * KEY) {
      const keys = new Int32Array(this.keys.length * 2);
      keys.set(this.keys);
      this.keys = keys;
    }
    this.keys.set(k, idx * KEY);
    this.place(h, idx);
    return e;
  }

  private place(h: number, idx: number): void {
    const mask = this.slots.length - 1;
    let s = h & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = idx + 1;
  }

  private grow(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    for (let idx = 0; idx < this.entries.length; idx++) {
      let h = 0x811c9dc5;
      for (let j = 0; j < KEY; j++) h = Math.imul(h ^ this.keys[idx * KEY + j], 0x01000193);
      h ^= h >>> 15;
      this.place(h, idx);
    }
  }

  private reset(): void {
    this.slots = new Int32Array(1024);
    this.keys = new Int32Array(1024 * KEY);
    this.entries = [];
  }

  /** The batch itself when 4-byte aligned (the addon's always are), else an aligned copy. */
  private alignedView(buf: Buffer, bytes: number): Buffer {
    if (buf.byteOffset % 4 === 0) return buf;
    if (!this.aligned || this.aligned.length < bytes) this.aligned = Buffer.alloc(bytes);
    buf.copy(this.aligned, 0, 0, bytes);
    return this.aligned;
  }
}

/** ts_ns of the record at word offset o, as a double (exact to the nanosecond below 2^53). */
function wallNs(w: Int32Array, o: number): number {
  return (w[o + W.tsHi] >>> 0) * 4294967296 + (w[o + W.tsLo] >>> 0);
}
