/** IP addresses as text and bytes: the one parser every layer uses. Pure. */
import { isIP } from 'node:net';

/** An IPv4 (4 bytes) or IPv6 (16 bytes, an embedded IPv4 tail allowed) address, or null when it is not one. */
export function addrBytes(text: string): Buffer | null {
  // a zone (fe80::1%eth0) names a link, not an address a packet carries
  const version = text.includes('%') ? 0 : isIP(text);
  if (version === 4) return Buffer.from(text.split('.').map(Number));
  if (version !== 6) return null;
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const o = v4[1].split('.').map(Number);
    t = t.slice(0, -v4[1].length) + `${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = t.split('::');
  const h = head ? head.split(':') : [];
  const rest = tail !== undefined && tail ? tail.split(':') : [];
  const words = tail === undefined ? h : [...h, ...Array(8 - h.length - rest.length).fill('0'), ...rest];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(parseInt(w, 16), i * 2));
  return out;
}

/** Whether addr falls in prefix/len; addresses of different families never do. */
export function inPrefix(addr: string, prefix: string, len: number): boolean {
  const a = addrBytes(addr);
  const p = addrBytes(prefix);
  if (!a || !p || a.length !== p.length || len < 0 || len > a.length * 8) return false;
  for (let bit = 0; bit < len; bit += 8) {
    const n = Math.min(8, len - bit);
    const mask = (0xff << (8 - n)) & 0xff;
    if ((a[bit >> 3] & mask) !== (p[bit >> 3] & mask)) return false;
  }
  return true;
}
