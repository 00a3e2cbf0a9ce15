/**
 * Steering a MongoDB replica set. MongoDB elects its own primary: switchyard never promotes,
 * it asks. A switchover is `replSetStepDown` on the primary; the target is chosen either by
 * raising its priority with `replSetReconfig` (then restoring the old priorities) or by
 * freezing the other secondaries with `replSetFreeze` (then unfreezing them). Pause freezes
 * elections on the secondaries. Every call is bounded by `timeoutMs`.
 */
import { MongoClient, type Document } from 'mongodb';
import { SwitchyardError } from '../../errors.js';
import type { Connection, EngineLog } from '../types.js';
import { mongoUri } from './probe.js';

export type SteerHow = 'priority' | 'freeze';

export interface SwitchoverOptions {
  /** "host:port" of the member to hand over to; absent: whichever the set elects */
  to?: string;
  /** how the target is chosen (default 'priority') */
  how?: SteerHow;
  /** the old primary is not electable for this long (replSetStepDown seconds, default 60) */
  stepDownSecs?: number;
  /** how long the old primary waits for a secondary to catch up (default 10) */
  catchUpSecs?: number;
  /** the whole switchover, ms (default 30 s) */
  timeoutMs?: number;
}

export interface SwitchoverResult {
  from: string;
  to: string;
  how: SteerHow | 'election';
  durationMs: number;
}

type Member = Pick<Connection, 'host' | 'port' | 'user' | 'password'>;

const addr = (m: Member) => `${m.host}:${String(m.port)}`;

/** Direct connections to each member of a set, opened lazily, for steering commands. */
export class MongoSteering {
  private readonly clients = new Map<string, MongoClient>();

  constructor(
    private readonly members: Member[],
    private readonly log?: EngineLog,
    private readonly callTimeoutMs = 5000,
  ) {}

  private async client(m: Member): Promise<MongoClient> {
    const key = addr(m);
    let c = this.clients.get(key);
    if (!c) {
      c = new MongoClient(mongoUri(m, '?directConnection=true'), { serverSelectionTimeoutMS: this.callTimeoutMs, connectTimeoutMS: this.callTimeoutMs, maxPoolSize: 2 });
      this.clients.set(key, c);
    }
    return c;
  }

  /** runs an admin command on one member */
  async run(m: Member, cmd: Document, timeoutMs = this.callTimeoutMs): Promise<Document> {
    const c = await this.client(m);
    return c.db('admin').command(cmd, { timeoutMS: timeoutMs });
  }

  private member(address: string): Member {
    const m = this.members.find((x) => addr(x) === address);
    if (!m) throw new SwitchyardError('UNKNOWN_NODE', `no member ${JSON.stringify(address)} in the set (members: ${this.members.map(addr).join(', ')})`);
    return m;
  }

  /** every member's hello (null where it does not answer) */
  async hellos(): Promise<{ member: Member; hello: Document | null }[]> {
    return Promise.all(this.members.map(async (member) => ({ member, hello: await this.run(member, { hello: 1 }).catch(() => null) })));
  }

  async findPrimary(): Promise<Member | null> {
    const hs = await this.hellos();
    // the newest electionId wins when two claim primary (a stale primary after a partition)
    const ps = hs.filter((h) => h.hello?.isWritablePrimary === true).sort((a, b) => String(b.hello?.electionId?.toString()).localeCompare(String(a.hello?.electionId?.toString())));
    return ps[0]?.member ?? null;
  }

  private async waitPrimary(not: string, want: string | undefined, deadline: number): Promise<string> {
    for (;;) {
      const p = await this.findPrimary();
      const a = p ? addr(p) : null;
      if (a && a !== not && (want === undefined || a === want)) return a;
      if (Date.now() >= deadline) throw new Error(`switchover: no new primary${want ? ` (${want})` : ''} within the timeout; current: ${String(a)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** replSetFreeze on every secondary except `except` (pause: no member can be elected). */
  async freeze(secs: number, except: string[] = []): Promise<string[]> {
    const frozen: string[] = [];
    for (const { member, hello } of await this.hellos()) {
      if (!hello || hello.isWritablePrimary === true || hello.arbiterOnly === true || except.includes(addr(member))) continue;
      await this.run(member, { replSetFreeze: secs });
      frozen.push(addr(member));
    }
    this.log?.info({ frozen, secs }, secs > 0 ? 'mongo: elections frozen' : 'mongo: elections unfrozen');
    return frozen;
  }

  /** replSetFreeze 0 on the given members (or every secondary) */
  async unfreeze(members?: string[]): Promise<void> {
    if (!members) {
      await this.freeze(0);
      return;
    }
    for (const a of members) await this.run(this.member(a), { replSetFreeze: 0 }).catch((err: unknown) => this.log?.warn({ member: a, err }, 'mongo: unfreeze failed'));
  }

  private async setPriorities(primary: Member, change: (members: Document[]) => void): Promise<Document[]> {
    const { config } = (await this.run(primary, { replSetGetConfig: 1 })) as { config: Document };
    const before = (config.members as Document[]).map((m) => ({ ...m }));
    const members = (config.members as Document[]).map((m) => ({ ...m }));
    change(members);
    await this.run(primary, { replSetReconfig: { ...config, version: Number(config.version) + 1, members } });
    return before;
  }

  /**
   * A planned hand-over: steer the target (by priority or by freezing the others), step the
   * primary down, wait for the new primary, restore what was changed (also on failure).
   */
  async switchover(opts: SwitchoverOptions = {}): Promise<SwitchoverResult> {
    const started = Date.now();
    const deadline = started + (opts.timeoutMs ?? 30_000);
    const how = opts.how ?? 'priority';
    const primary = await this.findPrimary();
    if (!primary) throw new Error('switchover: the set has no primary');
    const from = addr(primary);
    if (opts.to !== undefined) {
      this.member(opts.to);
      if (opts.to === from) throw new SwitchyardError('INVALID_OPTIONS', `switchover: ${opts.to} is already the primary`);
    }
    let restore: (() => Promise<void>) | null = null;
    try {
      if (opts.to !== undefined && how === 'freeze') {
        const frozen = await this.freeze(opts.stepDownSecs ?? 60, [opts.to]);
        restore = () => this.unfreeze(frozen);
      } else if (opts.to !== undefined) {
        const target = opts.to;
        const before = await this.setPriorities(primary, (ms) => {
          const top = Math.max(...ms.map((m) => Number(m.priority ?? 1)));
          for (const m of ms) if (m.host === target) m.priority = top + 1;
        });
        restore = async () => {
          const now = await this.findPrimary();
          if (!now) return;
          await this.setPriorities(now, (ms) => {
            for (const m of ms) m.priority = before.find((b) => b._id === m._id)?.priority ?? m.priority;
          });
        };
      }
      this.log?.info({ from, to: opts.to ?? null, how }, 'mongo: stepping the primary down');
      try {
        await this.run(primary, { replSetStepDown: opts.stepDownSecs ?? 60, secondaryCatchUpPeriodSecs: opts.catchUpSecs ?? 10 }, Math.max(1000, (opts.catchUpSecs ?? 10) * 1000 + 2000));
      } catch (err) {
        // already stepped down by a priority takeover, or the connection closed as it stepped down: the wait below decides
        this.log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'mongo: replSetStepDown did not answer ok');
      }
      const to = await this.waitPrimary(from, opts.to, deadline);
      return { from, to, how: opts.to === undefined ? 'election' : how, durationMs: Date.now() - started };
    } finally {
      if (restore) await restore().catch((err: unknown) => this.log?.error({ err }, 'mongo: restoring after the switchover failed'));
    }
  }

  async close(): Promise<void> {
    const cs = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(cs.map((c) => c.close(true).catch(() => undefined)));
  }
}
