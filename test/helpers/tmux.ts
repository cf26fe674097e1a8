/**
 * `droptrace live` in a real terminal: tmux runs it, send-keys types, and
 * capture-pane reads the screen. Exit code and readiness come from files.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './cli.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Tmux {
  readonly name = `dt${process.pid}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'droptrace-tmux-'));
  readonly exitFile = join(this.dir, 'exit');
  readonly readyFile = join(this.dir, 'ready');

  start(args: string[], env = '', size: [number, number] = [80, 24]): void {
    const cmd = `${env} ${process.execPath} ${BIN} live ${args.join(' ')} --ready-file ${this.readyFile}; echo EXIT=$? > ${this.exitFile}; sleep 120`;
    const r = spawnSync('tmux', ['new-session', '-d', '-s', this.name, '-x', String(size[0]), '-y', String(size[1]), cmd]);
    if (r.status !== 0) throw new Error(`tmux: ${r.stderr}`);
  }
  screen(): string {
    return spawnSync('tmux', ['capture-pane', '-p', '-t', this.name], { encoding: 'utf8' }).stdout;
  }
  keys(...keys: string[]): void {
    spawnSync('tmux', ['send-keys', '-t', this.name, ...keys]);
  }
  async waitFor(pred: (screen: string) => boolean, what: string, ms = 8000): Promise<string> {
    const until = Date.now() + ms;
    let s = this.screen();
    while (!pred(s)) {
      if (Date.now() > until) throw new Error(`screen never showed ${what}:\n${s}`);
      await sleep(100);
      s = this.screen();
    }
    return s;
  }
  async ready(): Promise<void> {
    const until = Date.now() + 20_000;
    while (!existsSync(this.readyFile)) {
      if (Date.now() > until) throw new Error(`live not ready:\n${this.screen()}`);
      await sleep(50);
    }
  }
  exitCode(): string | null {
    return existsSync(this.exitFile) ? readFileSync(this.exitFile, 'utf8').trim() : null;
  }
  kill(): void {
    spawnSync('tmux', ['kill-session', '-t', this.name]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
