import { defineConfig } from 'vitest/config';

/**
 * Three projects, run in this order by `npm test` and one at a time by `npx vitest run --project
 * NAME`: unit (pure modules on fixtures, the CLI without the kernel: seconds), kernel (root, BTF,
 * namespaces: the tracer against the kernel's own counters), artifacts (what ships: the
 * fallback build, the npm package, the image and its pod, the kernel matrix under qemu: minutes).
 * Kernel and artifact tests attach BPF programs and build namespaces: one file at a time, so
 * "nothing of ours is attached" after a test means something.
 */
const ARTIFACTS = ['test/build.test.ts', 'test/package.kernel.test.ts', 'test/image.kernel.test.ts', 'test/kernels.matrix.test.ts'];
const serial = { fileParallelism: false, testTimeout: 60_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['src/**/*.test.ts', 'test/deploy.test.ts', 'test/scripts.test.ts', 'test/symbolize.cli.test.ts', 'test/report.cli.test.ts'], ...serial } },
      { test: { name: 'kernel', include: ['test/*.kernel.test.ts'], exclude: ARTIFACTS, ...serial } },
      { test: { name: 'artifacts', include: ARTIFACTS, ...serial } },
    ],
  },
});
