/** What reading this machine's drops needs from this machine: its symbols and its reason names. */
import { KallsymsError, SymbolTable } from '../model/kallsyms.js';
import { loadReasons, type ReasonTable } from '../model/reasons.js';
import { loadAddon } from './native.js';

/** Loads this machine's symbols; null plus a warning when they are hidden or unreadable. */
export function loadLocalSymbols(path = '/proc/kallsyms'): { table: SymbolTable | null; warning: string | null } {
  try {
    return { table: SymbolTable.readFile(path), warning: null };
  } catch (err) {
    const msg = err instanceof KallsymsError ? err.message : `cannot read ${path}: ${(err as Error).message}`;
    return { table: null, warning: `${msg}; locations are shown as raw addresses` };
  }
}

/** This kernel's drop-reason names (BTF first, then tracefs). */
export function localReasons(): ReasonTable {
  let pairs: Array<[number, string]> | null = null;
  let subsystems: Array<[number, string]> = [];
  try {
    const addon = loadAddon();
    pairs = addon.reasons();
    subsystems = addon.reasonSubsystems() ?? [];
  } catch {
    // addon not built: tracefs may still name them
  }
  return loadReasons(pairs, undefined, subsystems);
}
