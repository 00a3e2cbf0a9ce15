/** The classifier's corpus (classify-corpus.json), shared by the unit and the standby tests. */
import fs from 'node:fs';

export interface CorpusCase {
  sql: string;
  kind: 'read' | 'write';
  reason: string;
  sticky?: boolean;
  opts?: { writeFunctions?: string[] };
  /** writes: the SQLSTATE a hot standby answers, 'ok' when it runs there, 'skip' when not run */
  standby?: string;
  note?: string;
}
export interface Corpus {
  setup: string[];
  cases: CorpusCase[];
}

export function loadCorpus(): Corpus {
  return JSON.parse(fs.readFileSync(new URL('./classify-corpus.json', import.meta.url), 'utf8')) as Corpus;
}
