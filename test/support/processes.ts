/** Test-only process helpers. */
import * as fs from 'node:fs';
import { readStat } from '../../src/os/process.js';

/** Live (non-zombie) members of process group `pgid`, found by scanning /proc. */
export function processGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      const s = readStat(pid);
      return s !== null && s.pgrp === pgid && s.state !== 'Z' && s.state !== 'X' && s.state !== 'x';
    });
}
