/**
 * Webhook sinks on journal events. Only the lease holder sends, and each alert goes out
 * once per journal entry, across leader changes, by a delivery cursor per cluster and
 * sink in Redis (`sy:{c}:alerts:<sink>`, a hash):
 *
 *   cursor         the last journal id dealt with
 *   claim          <item>|<lease token>|<deadline ms>: a send in progress
 *   pending:<node> <journal id>|<ms>: unhealthy since, not alerted yet
 *   sent:<node>    <journal id>: node.unhealthy sent (node.healthy resolves it)
 *
 * A send is claimed first by a fenced script (only the lease holder can claim, and not
 * over another holder's unexpired claim), then made, then finished by a script that
 * succeeds only while the claim is still its own, advancing the cursor. A deposed leader
 * finishes the send it started (its finish needs the claim, not the lease); the new
 * leader waits for that claim to finish or expire, and only re-sends an expired one
 * (the sender died mid-send), with the same idempotency key and PagerDuty dedup key.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { JournalRecord } from '../bus/journal.js';
import { redisTimeMs } from '../bus/clock.js';
import type { WebhookConfig } from '../config/schemas.js';
import { alertFor, genericPayload, healthyAlert, pagerDutyPayload, slackPayload, unhealthyAlert, type Alert } from './payloads.js';

export const PAGERDUTY_URL = 'https://events.pagerduty.com/v2/enqueue';

/** What alerts need of a cluster runtime (ClusterRuntime provides it). */
export interface AlertCluster {
  readonly name: string;
  readonly isLeader: boolean;
  readonly lease: { token: string | null };
  readonly k: { leader: string; log: string };
  readJournal(after: string, limit: number): Promise<JournalRecord[]>;
}

export interface AlertsOptions {
  clusters: ReadonlyMap<string, AlertCluster>;
  webhooks: WebhookConfig[];
  redisUrl: string;
  redisOptions?: RedisOptions;
  log: Logger;
  /** how often the leader looks for new entries */
  pollMs?: number;
  /** who sends (PagerDuty's payload.source) */
  source?: string;
  fetchImpl?: typeof fetch;
}

const CLAIM = `
-- KEYS[1] leader key, KEYS[2] alerts hash; ARGV: token, item, deadline, now
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local c = redis.call('HGET', KEYS[2], 'claim')
if c then
  local item, tok, deadline = string.match(c, '^(.*)|(.*)|(%d+)$')
  if tok ~= ARGV[1] and tonumber(deadline) > tonumber(ARGV[4]) then return -2 end
end
local v = ARGV[2] .. '|' .. ARGV[1] .. '|' .. ARGV[3]
redis.call('HSET', KEYS[2], 'claim', v)
return v`;

const FINISH = `
-- KEYS[1] alerts hash; ARGV[1] the claim; then ops: 'set' field value | 'del' field
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
local i = 2
while i <= #ARGV do
  if ARGV[i] == 'set' then redis.call('HSET', KEYS[1], ARGV[i+1], ARGV[i+2]); i = i + 3
  else redis.call('HDEL', KEYS[1], ARGV[i+1]); i = i + 2 end
end
redis.call('HDEL', KEYS[1], 'claim')
return 1`;

const INIT = `
-- KEYS[1] leader key, KEYS[2] alerts hash; ARGV: token, cursor
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('HSETNX', KEYS[2], 'cursor', ARGV[2])`;

type Op = ['set', string, string] | ['del', string];

interface Sink {
  cfg: WebhookConfig;
  url: string;
}

export class Alerts {
  private readonly redis: Redis | null;
  private sinks: Sink[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: AlertsOptions) {
    this.fetchImpl = opts.fetchImpl ?? fetch;
    this.configure(opts.webhooks);
    this.redis = new Redis(opts.redisUrl, { ...opts.redisOptions, lazyConnect: true, maxRetriesPerRequest: 2 });
    this.redis.on('error', (err) => opts.log.debug({ err: err.message }, 'alerts redis error'));
  }

  /** (Re)configure the sinks (SIGHUP). A sink keeps its cursor by name. */
  configure(webhooks: WebhookConfig[]): void {
    this.sinks = webhooks.map((cfg) => ({ cfg, url: cfg.url ?? (cfg.kind === 'pagerduty' ? PAGERDUTY_URL : '') }));
    if (this.started) this.marking = this.markStarts().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'could not read the journal end for new sinks'));
  }

  /**
   * Where a sink with no cursor yet starts: the journal's end when the sink was
   * configured (start-up or reload), not when this coordinator first leads. An entry
   * journaled between the two is alerted, not skipped.
   */
  private readonly startAt = new Map<string, string>();
  private marking: Promise<void> = Promise.resolve();
  private started = false;

  private async markStarts(): Promise<void> {
    for (const c of this.opts.clusters.values()) {
      let last: string | undefined;
      for (const s of this.sinks) {
        const hash = this.key(c, s);
        if (this.startAt.has(hash)) continue;
        last ??= await this.journalEnd(c);
        this.startAt.set(hash, last);
      }
    }
  }

  /** The id of the cluster's newest journal entry ('0-0' when it is empty). */
  private async journalEnd(c: AlertCluster): Promise<string> {
    return (await this.redis!.xrevrange(c.k.log, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
  }

  async start(): Promise<void> {
    if (!this.redis) return;
    await this.redis.connect();
    this.started = true;
    this.marking = this.markStarts();
    await this.marking;
    this.timer = setInterval(() => this.tick(), this.opts.pollMs ?? 250);
  }

  private tick(): void {
    if (this.running || this.stopping || this.sinks.length === 0) return;
    this.running = this.pass()
      .catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'alert pass failed'))
      .finally(() => {
        this.running = null;
      });
  }

  /** Run one pass now (tests). */
  async runOnce(): Promise<void> {
    while (this.running) await this.running;
    await this.pass();
  }

  private async pass(): Promise<void> {
    await this.marking;
    for (const c of this.opts.clusters.values()) {
      if (!c.isLeader || !c.lease.token) continue;
      for (const s of this.sinks) {
        if (this.stopping) return;
        await this.passSink(c, s);
      }
    }
  }

  private key(c: AlertCluster, s: Sink): string {
    // the cluster's hash tag keeps it in the journal's Redis Cluster slot
    return `${c.k.log.replace(/:log$/, '')}:alerts:${s.cfg.name}`;
  }

  private async passSink(c: AlertCluster, s: Sink): Promise<void> {
    const redis = this.redis!;
    const hash = this.key(c, s);
    const token = c.lease.token;
    if (!token) return;
    let state = await redis.hgetall(hash);
    if (state.cursor === undefined) {
      // a new sink starts at the journal's end as of when it was configured: it does not replay the history
      const last = this.startAt.get(hash) ?? (await this.journalEnd(c));
      await redis.eval(INIT, 2, c.k.leader, hash, token, last);
      state = await redis.hgetall(hash);
      if (state.cursor === undefined) return;
    }
    const now = await redisTimeMs(redis);
    const wants = new Set<string>(s.cfg.events);

    // 1. node.unhealthy alerts that have come due
    for (const [field, value] of Object.entries(state)) {
      if (!field.startsWith('pending:')) continue;
      const node = field.slice('pending:'.length);
      const [id, since, ...why] = value.split('|');
      if (now < Number(since) + s.cfg.unhealthyAfterMs) continue;
      const alert = unhealthyAlert(c.name, node, id!, why.join('|'), now - Number(since));
      const ok = await this.claimSendFinish(c, s, hash, token, `u:${id}`, alert, [['del', field], ['set', `sent:${node}`, id!]]);
      if (!ok) return;
    }

    // 2. the journal after the cursor, in order
    const records = await c.readJournal(state.cursor, 200);
    let quiet: string | null = null; // consecutive entries that alert nobody: one cursor move
    const flushQuiet = async (): Promise<boolean> => {
      if (quiet === null) return true;
      const ok = await this.claimSendFinish(c, s, hash, token, quiet, null, [['set', 'cursor', quiet]]);
      quiet = null;
      return ok;
    };
    for (const r of records) {
      if (this.stopping || !c.isLeader) return;
      const e = r.entry;
      let alert: Alert | null = null;
      const ops: Op[] = [['set', 'cursor', r.id]];
      if (e?.type === 'node.health-changed' && (wants.has('node.unhealthy') || wants.has('node.healthy'))) {
        const current = await redis.hmget(hash, `pending:${e.node}`, `sent:${e.node}`);
        if (!e.healthy && wants.has('node.unhealthy')) {
          if (!current[0] && !current[1]) ops.push(['set', `pending:${e.node}`, `${r.id}|${e.at}|${e.reason}`]);
        } else if (e.healthy) {
          if (current[0]) ops.push(['del', `pending:${e.node}`]);
          if (current[1]) {
            ops.push(['del', `sent:${e.node}`]);
            alert = healthyAlert(c.name, e.node, current[1], r.id);
          }
        }
      } else if (e) {
        const a = alertFor(c.name, r.id, e);
        if (a && wants.has(a.event)) alert = a;
      }
      if (!alert && ops.length === 1) {
        quiet = r.id;
        continue;
      }
      if (!(await flushQuiet())) return;
      if (!(await this.claimSendFinish(c, s, hash, token, r.id, alert, ops))) return;
    }
    await flushQuiet();
  }

  /** Claim `item`, send `alert` (if any), finish with `ops`. False: stop this pass (not leader, or another's claim). */
  private async claimSendFinish(c: AlertCluster, s: Sink, hash: string, token: string, item: string, alert: Alert | null, ops: Op[]): Promise<boolean> {
    const redis = this.redis!;
    const now = await redisTimeMs(redis);
    const budget = s.cfg.timeoutMs * (s.cfg.retries + 1) + s.cfg.backoffMs * 2 ** Math.min(s.cfg.retries, 10) + 1000;
    const claim = (await redis.eval(CLAIM, 2, c.k.leader, hash, token, item, String(now + budget), String(now))) as number | string;
    if (claim === -1) return false;
    if (claim === -2) {
      this.opts.log.debug({ sink: s.cfg.name, cluster: c.name }, 'another coordinator is finishing a delivery: waiting');
      return false;
    }
    if (alert) await this.deliver(s, alert, item);
    const finished = (await redis.eval(FINISH, 1, hash, String(claim), ...ops.flat())) as number;
    return finished === 1;
  }

  /** POST with retries and exponential backoff; gives up (logged) after the last retry. */
  private async deliver(s: Sink, a: Alert, item: string): Promise<boolean> {
    const body =
      s.cfg.kind === 'slack' ? slackPayload(a) : s.cfg.kind === 'pagerduty' ? pagerDutyPayload(a, s.cfg.routingKey ?? '', this.opts.source ?? 'switchyard') : genericPayload(a);
    const idempotencyKey = `${a.cluster}/${s.cfg.name}/${item}`;
    let delay = s.cfg.backoffMs;
    for (let attempt = 0; attempt <= s.cfg.retries; attempt++) {
      let status = 0;
      let why = '';
      try {
        const res = await this.fetchImpl(s.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey, 'user-agent': 'switchyard-alerts' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(s.cfg.timeoutMs),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.opts.log.info({ sink: s.cfg.name, event: a.event, journalId: a.journalId, attempt }, 'alert sent');
          return true;
        }
        why = `HTTP ${status}`;
        // a client error other than throttling will not get better by retrying
        if (status >= 400 && status < 500 && status !== 429 && status !== 408) break;
      } catch (err) {
        why = (err as Error).message;
      }
      this.opts.log.warn({ sink: s.cfg.name, event: a.event, attempt, why }, 'alert delivery failed');
      if (attempt < s.cfg.retries) {
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
    this.opts.log.error({ sink: s.cfg.name, event: a.event, journalId: a.journalId }, 'alert dropped after the last retry');
    return false;
  }

  /** Stop polling; a send in progress finishes (with its retries) first. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    this.redis?.disconnect();
  }
}
