/** Whether this machine can run a kernel test file, and if not, why: the one place that decides. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Whether a command is on PATH. */
export function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Root, the kernel's BTF, and the tools a file needs; when anything is missing, one line on
 * stderr says what the skipped tests (`what`) need, and the file skips them.
 */
export function canRunKernelTests(what: string, tools: readonly string[] = []): boolean {
  const need: string[] = [];
  if (process.getuid?.() !== 0) need.push('root');
  if (!existsSync('/sys/kernel/btf/vmlinux')) need.push('/sys/kernel/btf/vmlinux');
  need.push(...tools.filter((t) => !has(t)));
  if (need.length) console.warn(`skipping ${what}: it needs ${need.join(', ')} (scripts/setup --test installs the tools)`);
  return need.length === 0;
}
