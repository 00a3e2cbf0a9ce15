/**
 * The query classifier: the cost of classifyQuery on a text it has seen (the cache, the
 * common case: apps send the same parameterised texts) and on a new text (PostgreSQL's
 * parser in WebAssembly, then the walk of its tree). Timed in CPU time of this process
 * (process.cpuUsage), so that other work on a shared machine does not count.
 */
import { classifyQuery, clearClassifierCache, initClassifier } from '../src/client/classify.js';

/** texts an app sends: parameterised reads and writes of an ORM, and a few trickier ones */
const TEXTS = [
  'SELECT "id", "name", "email" FROM "users" WHERE "id" = $1',
  'SELECT "id", "name" FROM "users" WHERE "email" = $1 LIMIT 1',
  'SELECT count(*) FROM orders WHERE user_id = $1 AND status = $2',
  'SELECT o.id, o.total, u.name FROM orders o JOIN users u ON u.id = o.user_id WHERE o.created_at > $1 ORDER BY o.created_at DESC LIMIT 50',
  'INSERT INTO "users" ("name", "email") VALUES ($1, $2) RETURNING "id"',
  'UPDATE accounts SET balance = balance - $1 WHERE id = $2',
  'DELETE FROM sessions WHERE expires_at < now()',
  'WITH d AS (DELETE FROM jobs WHERE id = $1 RETURNING *) SELECT * FROM d',
  'SELECT * FROM jobs WHERE state = $1 ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED',
  "SELECT 'delete from t' AS s, \"update\" FROM t WHERE id IN (SELECT t_id FROM u WHERE note <> $1)",
];

/** CPU microseconds used by this process so far */
const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchClassifier(): Promise<{ cachedNs: number; uncachedUs: number }> {
  await initClassifier();
  clearClassifierCache();
  let sink = 0;
  // cached: warm, then many rounds over the same texts (median of 5 runs)
  for (const t of TEXTS) sink += classifyQuery(t).reason.length;
  const cached: number[] = [];
  const rounds = 1_000_000;
  for (let r = 0; r < 5; r++) {
    const t0 = cpuUs();
    for (let i = 0; i < rounds; i++) sink += classifyQuery(TEXTS[i % TEXTS.length]!).kind.length;
    cached.push(((cpuUs() - t0) * 1e3) / rounds);
  }
  // uncached: every text new (a distinct trailing comment), so each call parses
  const uncached: number[] = [];
  const n = 2_000;
  for (let r = 0; r < 5; r++) {
    clearClassifierCache();
    const t0 = cpuUs();
    for (let i = 0; i < n; i++) sink += classifyQuery(`${TEXTS[i % TEXTS.length]!} -- ${r}:${i}`).kind.length;
    uncached.push((cpuUs() - t0) / n);
  }
  clearClassifierCache();
  if (sink === 0) throw new Error('classifier did nothing');
  return { cachedNs: Math.round(median(cached)), uncachedUs: Math.round(median(uncached) * 10) / 10 };
}
