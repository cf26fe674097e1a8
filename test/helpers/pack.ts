/**
 * The npm package as a user gets it: packed from this checkout (npm pack runs prepack: the
 * TypeScript and the prebuilt addon), installed into an empty project from the tarball.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cli.js';

/** Packs the checkout into dir; returns the tarball's path. */
export function pack(dir: string): string {
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return join(dir, out.trim().split('\n').pop()!);
}

/** Tools a build needs and a node must not: none of them may be reachable on the PATH below. */
export const BUILD_TOOLS = /^(clang|llc|llvm-|bpftool|cmake|gcc|g\+\+|cc|c\+\+|make|x86_64-linux-gnu-)/;

/**
 * A PATH of the system's directories without any build tool: a directory of links to every other
 * program in them (first one found wins, as on the real PATH).
 */
export function pathWithoutBuildTools(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const seen = new Set<string>();
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (seen.has(n) || BUILD_TOOLS.test(n)) continue;
      seen.add(n);
      symlinkSync(join(d, n), join(dir, n));
    }
  }
  return dir;
}

/** An empty project with the tarball installed as a user would: production dependencies only. */
export function installInto(dir: string, tarball: string, env: NodeJS.ProcessEnv): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'droptrace-user', private: true }));
  execFileSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return dir;
}
