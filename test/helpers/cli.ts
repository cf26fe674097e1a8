/**
 * Runs the real CLI (bin/droptrace.js → dist/) as a child process, waits for
 * its ready file instead of sleeping, and collects what it printed.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'droptrace.js');

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class Running {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Finished>;
  constructor(readonly child: ChildProcess, private readonly dir: string, readonly readyFile: string) {
    child.stdout?.on('data', (d) => (this.stdout += d));
    child.stderr?.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((res) =>
      child.on('close', (code, signal) => {
        rmSync(this.dir, { recursive: true, force: true });
        res({ code, signal, stdout: this.stdout, stderr: this.stderr });
      }),
    );
  }

  /** Resolves once the tracer is attached; rejects if the process exits first. */
  async ready(timeoutMs = 20_000): Promise<void> {
    const start = Date.now();
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (!existsSync(this.readyFile)) {
      if (exited) throw new Error(`droptrace exited before it was ready:\n${this.stderr}`);
      if (Date.now() - start > timeoutMs) throw new Error(`droptrace not ready after ${timeoutMs} ms:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<Finished> {
    this.child.kill(signal);
    return this.exited;
  }
}

/** Starts `droptrace ARGS --ready-file …`. */
export function start(args: string[], opts: SpawnOptions = {}): Running {
  return startBin(BIN, args, opts);
}

/** Starts another droptrace (an installed package's bin) the same way. */
export function startBin(bin: string, args: string[], opts: SpawnOptions = {}): Running {
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-test-'));
  const readyFile = join(dir, 'ready');
  const child = spawn(process.execPath, [bin, ...args, '--ready-file', readyFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...opts,
  });
  return new Running(child, dir, readyFile);
}

/** Runs a command to completion. */
export function run(argv: string[], opts: SpawnOptions = {}): Promise<Finished> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
}

/** Parses JSON Lines output. */
export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** The exact in-kernel count from trace's summary line. */
export function kernelCount(stderr: string): number {
  const m = /the kernel counted (\d+) drops?/.exec(stderr);
  if (!m) throw new Error(`no summary line in:\n${stderr}`);
  return Number(m[1]);
}
