/**
 * Example: a small Fastify service on ReplicatedPool.
 *
 *   GET  /users             the users list (a read: a replica)
 *   POST /users {name}      create a user (the primary), then read it back (read-your-writes:
 *                           a replica that has replayed it, else the primary)
 *   POST /transfer {from, to, amount}   move funds in one transaction (the primary)
 *   GET  /healthz           the pool's view: primary, nodes, counts
 *
 * Each request has its own read-your-writes scope (the Fastify plugin); a client that
 * sends back the `x-switchyard-token` header it got reads its own writes on any instance.
 * In an app: `import { ReplicatedPool, switchyardFastify } from 'switchyard/client'`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { ReplicatedPool, switchyardFastify, ClientError } from '../../src/client/index.js';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS accounts (user_id bigint PRIMARY KEY REFERENCES users(id), balance bigint NOT NULL CHECK (balance >= 0));
`;

export function buildApp(db: ReplicatedPool): FastifyInstance {
  const app = Fastify({ logger: false });
  void app.register(switchyardFastify(db));

  app.setErrorHandler((err: Error, _req, reply) => {
    // the pool's coded errors: the database is (briefly) not writable or not readable
    if (err instanceof ClientError) return reply.code(503).send({ error: err.code, message: err.message });
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    return reply.code(status).send({ error: 'ERROR', message: err.message });
  });

  app.get('/users', async () => {
    const r = await db.query<{ id: string; name: string }>('SELECT id, name FROM users ORDER BY id DESC LIMIT 100');
    return { users: r.rows };
  });

  app.post<{ Body: { name: string; balance?: number } }>('/users', {
    schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 100 }, balance: { type: 'integer', minimum: 0 } } } },
  }, async (req, reply) => {
    const created = await db.transaction(async (tx) => {
      const u = await tx.query<{ id: string }>('INSERT INTO users (name) VALUES ($1) RETURNING id', [req.body.name]);
      await tx.query('INSERT INTO accounts (user_id, balance) VALUES ($1, $2)', [u.rows[0]!.id, req.body.balance ?? 0]);
      return u.rows[0]!.id;
    });
    // read it back: this request wrote, so this read never sees a replica that is behind
    const r = await db.query<{ id: string; name: string; balance: string }>('SELECT u.id, u.name, a.balance FROM users u JOIN accounts a ON a.user_id = u.id WHERE u.id = $1', [created]);
    return reply.code(201).send({ user: r.rows[0] ?? null });
  });

  app.post<{ Body: { from: string; to: string; amount: number } }>('/transfer', {
    schema: { body: { type: 'object', required: ['from', 'to', 'amount'], properties: { from: { type: 'string' }, to: { type: 'string' }, amount: { type: 'integer', minimum: 1 } } } },
  }, async (req, reply) => {
    const { from, to, amount } = req.body;
    const out = await db.transaction(async (tx) => {
      // lock both rows in id order (no deadlock between opposite transfers)
      const rows = await tx.query<{ user_id: string; balance: string }>('SELECT user_id, balance FROM accounts WHERE user_id = ANY($1::bigint[]) ORDER BY user_id FOR UPDATE', [[from, to]]);
      const src = rows.rows.find((r) => r.user_id === from);
      if (!src || !rows.rows.some((r) => r.user_id === to)) return { status: 404 as const, body: { error: 'NOT_FOUND', message: 'no such account' } };
      if (Number(src.balance) < amount) return { status: 409 as const, body: { error: 'INSUFFICIENT_FUNDS', message: `account ${from} has ${src.balance}` } };
      await tx.query('UPDATE accounts SET balance = balance - $2 WHERE user_id = $1', [from, amount]);
      await tx.query('UPDATE accounts SET balance = balance + $2 WHERE user_id = $1', [to, amount]);
      const after = await tx.query<{ user_id: string; balance: string }>('SELECT user_id, balance FROM accounts WHERE user_id = ANY($1::bigint[]) ORDER BY user_id', [[from, to]]);
      return { status: 200 as const, body: { balances: Object.fromEntries(after.rows.map((r) => [r.user_id, Number(r.balance)])) } };
    });
    return reply.code(out.status).send(out.body);
  });

  app.get('/healthz', async () => db.stats());
  return app;
}
