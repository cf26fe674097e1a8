/**
 * The kernel matrix (scripts/kernel-matrix/run): Debian 11, 12 and 13's own kernels and
 * unstable's newest (7.2) booted
 * under qemu with an initramfs built from this checkout, plus the host's kernel, each checked
 * on every attach path it offers against its own counters. Needs root, qemu-system-x86,
 * busybox-static, cpio, mmdebstrap and iproute2's devlink (scripts/setup --test), and reaches
 * Debian's mirror through apt (and mmdebstrap, which builds netdevsim for each kernel).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, run } from './helpers/cli.js';
import { canRunKernelTests } from './helpers/kernel.js';

const canRun = canRunKernelTests('the kernel matrix', ['qemu-system-x86_64', 'cpio']);

describe.skipIf(!canRun)('the kernel matrix', () => {
  it('5.10, 6.1, 6.12, 7.2 and the host kernel trace every drop on every attach path they offer', async () => {
    // spawned, not spawnSync: a worker blocked for minutes cannot answer vitest, which then fails the run
    const r = await run([join(ROOT, 'scripts/kernel-matrix/run')]);
    console.log(r.stdout + r.stderr);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // every row is there: the host and the four Debian kernels
    expect(r.stdout).toMatch(/^\| 5\.10\.0-\d+-amd64 /m);
    expect(r.stdout).toMatch(/^\| 6\.1\.0-\d+-amd64 /m);
    expect(r.stdout).toMatch(/^\| 6\.12\.\d+\+deb13-amd64 /m);
    expect(r.stdout).toMatch(/^\| 7\.2\.\d+\+deb14-amd64 /m);
    expect(r.stdout).toMatch(/\(host\)/);
    // on 6.1 (and later Debian kernels) fentry and kprobe are offered and deliver everything
    const row61 = r.stdout.split('\n').find((l) => /^\| 6\.1\.0-/.test(l))!;
    expect(row61.split('|').slice(3, 7).map((c) => c.trim())).toEqual(['5/5 NO_SOCKET', '5/5 NO_SOCKET', '5/5 NO_SOCKET', '5/5 NO_SOCKET']);
    // --path on every kernel, both tracepoint flavours: each of the 5 drops has its path through lo
    for (const row of r.stdout.split('\n').filter((l) => /^\| [5-7]\.\d/.test(l))) expect(row.split('|')[7].trim()).toMatch(/^5\/5, 5\/5 \(\d+ tracepoints/);
    // --path functions: kprobes one by one on 6.1 (built without CONFIG_FPROBE), kprobe-multi on 6.12
    // and 7.2; each drop's path names ip_rcv and the function that dropped it. 5.10 cannot (no
    // bpf_get_func_ip in kprobes)
    const cell = (re: RegExp) => r.stdout.split('\n').find((l) => re.test(l))!.split('|')[8].trim();
    expect(cell(/^\| 6\.1\.0-/)).toMatch(/^5\/5 \(\d{3,} functions, kprobe, \d+ ms\)$/);
    expect(cell(/^\| 6\.12\./)).toMatch(/^5\/5 \(\d{3,} functions, kprobe-multi, \d+ ms\)$/);
    expect(cell(/^\| 7\.2\./)).toMatch(/^5\/5 \(\d{3,} functions, kprobe-multi, \d+ ms\)$/);
    expect(cell(/^\| 5\.10\./)).toBe('not offered');
    const col = (re: RegExp, i: number) => r.stdout.split('\n').find((l) => re.test(l))!.split('|')[i].trim();
    // qdisc drops (tbf's full queue, fq's paced flow over its limit) equal the qdisc's own counter
    // everywhere; 7.2's qdisc:qdisc_drop names the limit although the free says only QDISC_DROP
    expect(col(/^\| 7\.2\./, 11)).toMatch(/^tbf (\d+)\/\1 QDISC_DROP_[A-Z_]+ \(freed as QDISC_DROP\); fq (\d+)\/\2 QDISC_DROP_FLOW_LIMIT( \(freed as QDISC_DROP\))?$/);
    expect(col(/^\| 6\.12\./, 11)).toMatch(/^tbf (\d+)\/\1 QDISC_DROP; fq (\d+)\/\2 FQ_FLOW_LIMIT$/);
    expect(col(/^\| 5\.10\./, 11)).toMatch(/^tbf (\d+)\/\1 -; fq (\d+)\/\2 -$/);
    // the receiving socket: named on every attach path of 6.12 and 7.2, as often as RcvbufErrors rose
    for (const re of [/^\| 6\.12\./, /^\| 7\.2\./]) expect(col(re, 12)).toMatch(/^(\d+)\/\1, (\d+)\/\2, (\d+)\/\3, (\d+)\/\4$/);
    for (const re of [/^\| 5\.10\./, /^\| 6\.1\.0-/]) expect(col(re, 12)).toBe('not offered (< 6.11)');
    // hardware traps: netdevsim (built by the matrix) on every Debian kernel, on both tracepoint
    // flavours; every drop and exception trap counted as devlink counted it, packets and bytes, and
    // as many in a recording
    for (const re of [/^\| 5\.10\./, /^\| 6\.1\.0-/, /^\| 6\.12\./, /^\| 7\.2\./]) {
      expect(col(re, 13)).toMatch(/^([1-9]\d*)\/\1 in ([1-9])\/\2 traps; ([1-9]\d*)\/\3 in ([1-9])\/\4 traps; record ([1-9]\d*)\/\5$/);
    }
  }, 45 * 60_000);
});
