/**
 * The one writer of a node's configuration files: `postgresql.auto.conf` (the settings
 * switchyard changes on a stopped server: primary_conninfo, read-only fencing) and the
 * lines it appends to `postgresql.conf` (port, listen address). A running server's
 * settings change through ALTER SYSTEM, which writes the same file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chownToPg } from './owner.js';

/** Quotes a string for postgresql.conf. */
export function confString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * Sets (string value) or removes (null) settings in `postgresql.auto.conf`; every
 * earlier line of a setting named in `changes` is dropped, the others are kept in order.
 */
export function updateAutoConf(dataDir: string, changes: Record<string, string | null>): void {
  const file = path.join(dataDir, 'postgresql.auto.conf');
  const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const names = Object.keys(changes);
  const kept = existing.split('\n').filter((l) => {
    if (l === '') return false;
    const name = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=/.exec(l)?.[1];
    return !(name && names.includes(name));
  });
  for (const [name, value] of Object.entries(changes)) if (value !== null) kept.push(`${name} = ${confString(value)}`);
  fs.writeFileSync(file, kept.join('\n') + '\n', { mode: 0o600 });
  chownToPg(file);
}

/** Reads one setting from `postgresql.auto.conf` (unquoted), or null. */
export function readAutoConf(dataDir: string, name: string): string | null {
  const file = path.join(dataDir, 'postgresql.auto.conf');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  let value: string | null = null;
  for (const l of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*'((?:[^']|'')*)'/.exec(l);
    if (m && m[1] === name) value = m[2]!.replace(/''/g, "'").replace(/\\\\/g, '\\');
  }
  return value;
}

/**
 * Appends this node's own lines to `postgresql.conf` (later lines win): after a copy
 * from another node (pg_basebackup, pg_rewind) the file carries the source's port.
 * The listen address is written only when given: a clone keeps the one configured.
 */
export function appendNodeConf(dataDir: string, who: string, settings: { port: number; listen?: string | undefined }): void {
  const file = path.join(dataDir, 'postgresql.conf');
  const lines = ['', `# --- switchyard: ${who} ---`];
  if (settings.listen !== undefined) lines.push(`listen_addresses = ${confString(settings.listen)}`);
  lines.push(`port = ${settings.port}`, '');
  fs.appendFileSync(file, lines.join('\n'));
  chownToPg(file);
  // a copied postgresql.auto.conf (ALTER SYSTEM on the source) would override them
  if (readAutoConf(dataDir, 'port') !== null || readAutoConf(dataDir, 'listen_addresses') !== null) {
    updateAutoConf(dataDir, { port: null, ...(settings.listen !== undefined ? { listen_addresses: null } : {}) });
  }
}

/** Creates standby.signal if it is not there. */
export function writeStandbySignal(dataDir: string): void {
  const signal = path.join(dataDir, 'standby.signal');
  if (!fs.existsSync(signal)) {
    fs.writeFileSync(signal, '');
    chownToPg(signal);
  }
}
