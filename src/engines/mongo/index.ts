/**
 * The MongoDB engine (replica sets), observe-only through the seam: the set elects its own
 * primary, so promote/demote/follow/fence/unfence/sync are refused with
 * ENGINE_ACTION_UNSUPPORTED; planned hand-overs are steered by `MongoSteering.switchover`
 * (replSetStepDown, with replSetReconfig priorities or replSetFreeze). No managed process
 * control: switchyard watches a mongod, it does not start one.
 *
 * Registered in src/engines/index.ts; the core knows it elects itself (src/engines/traits.ts):
 * the old primary's agent runs `switchover` on a switchover job, pause/resume freeze elections.
 */
import { BSON, MongoClient } from 'mongodb';
import { SwitchyardError } from '../../errors.js';
import type { ActionResult, Connection, Engine, EngineAction, EngineLog, NodeActions, Upstream, SyncSpec } from '../types.js';
import { MongoSteering } from './actions.js';
import { MongoProber, mongoPosition, mongoUri } from './probe.js';

/**
 * The peer view's probe bytes: one OP_MSG (opcode 2013, flagBits 0, a body section) carrying
 * `{ hello: 1, $db: 'admin' }`, which any live mongod answers before authentication. (Without
 * it the agent sent PostgreSQL's SSLRequest, whose first four bytes a mongod reads as a
 * 134 MB message length: no answer, so every live member looked unreachable from its peers.)
 */
export function mongoHelloBytes(): Uint8Array {
  const body = BSON.serialize({ hello: 1, $db: 'admin' });
  const msg = Buffer.alloc(21 + body.length);
  msg.writeInt32LE(msg.length, 0); // messageLength
  msg.writeInt32LE(1, 4); // requestID
  msg.writeInt32LE(0, 8); // responseTo
  msg.writeInt32LE(2013, 12); // OP_MSG
  msg.writeUInt32LE(0, 16); // flagBits
  msg.writeUInt8(0, 20); // section kind 0: body
  msg.set(body, 21);
  return Uint8Array.from(msg);
}

const SUPPORTED: ReadonlySet<EngineAction> = new Set<EngineAction>(['switchover']);

function unsupported(action: string): SwitchyardError {
  return new SwitchyardError('ENGINE_ACTION_UNSUPPORTED', `mongodb: ${action} is not supported: a MongoDB replica set elects its own primary (use switchover)`);
}

/** The seam's node actions for a mongod: `inRecovery`, and steering (switchover, freezing elections) through MongoSteering. */
export class MongoNodeActions implements NodeActions {
  constructor(
    private readonly conn: Connection,
    private readonly log?: EngineLog,
  ) {}

  /** A steering session over every member this one's hello lists (same credentials). */
  private async steering(): Promise<MongoSteering> {
    const c = new MongoClient(mongoUri(this.conn, '?directConnection=true'), { serverSelectionTimeoutMS: 3000, connectTimeoutMS: 3000 });
    let hosts: string[];
    try {
      const h = await c.db('admin').command({ hello: 1 }, { timeoutMS: 3000 });
      hosts = [...((h.hosts as string[] | undefined) ?? []), ...((h.passives as string[] | undefined) ?? [])];
    } finally {
      await c.close(true).catch(() => undefined);
    }
    if (hosts.length === 0) hosts = [`${this.conn.host}:${String(this.conn.port)}`];
    const members = hosts.map((a) => {
      const i = a.lastIndexOf(':');
      return { host: a.slice(0, i), port: Number(a.slice(i + 1)), user: this.conn.user, password: this.conn.password };
    });
    return new MongoSteering(members, this.log);
  }

  /** Hand over to `to`: replSetStepDown with its priority raised; done (idempotently) once it is the primary. */
  async switchover(to: Upstream): Promise<ActionResult> {
    const target = `${to.host}:${String(to.port)}`;
    const steer = await this.steering();
    try {
      const p = await steer.findPrimary();
      if (p && `${p.host}:${String(p.port)}` === target) return { message: `${target} is the primary already` };
      // (within the coordinator's default promoteTimeoutMs, 15 s: the operation would end unconfirmed after it)
      const r = await steer.switchover({ to: target, how: 'priority', catchUpSecs: 5, timeoutMs: 12_000 });
      return { message: `stepped down ${r.from}: ${r.to} elected (${r.how}, ${String(r.durationMs)} ms)` };
    } finally {
      await steer.close();
    }
  }

  /** Pause: no secondary may be elected for `secs` (replSetFreeze); 0 unfreezes them. */
  async freezeElections(secs: number): Promise<ActionResult> {
    const steer = await this.steering();
    try {
      const members = await steer.freeze(secs);
      return { message: secs > 0 ? `elections frozen for ${String(secs)} s on ${members.join(', ') || 'no secondary'}` : `elections unfrozen on ${members.join(', ') || 'no secondary'}` };
    } finally {
      await steer.close();
    }
  }

  promote(): Promise<ActionResult> {
    return Promise.reject(unsupported('promote'));
  }
  fence(): Promise<void> {
    return Promise.reject(unsupported('fence'));
  }
  unfence(): Promise<void> {
    return Promise.reject(unsupported('unfence'));
  }
  follow(_up: Upstream): Promise<string> {
    return Promise.reject(unsupported('follow'));
  }
  sync(_spec: SyncSpec): Promise<ActionResult> {
    return Promise.reject(unsupported('sync'));
  }
  /** true when the member is a secondary (or recovering), false when primary, null when unreachable */
  async inRecovery(): Promise<boolean | null> {
    const c = new MongoClient(mongoUri(this.conn, '?directConnection=true'), { serverSelectionTimeoutMS: 3000, connectTimeoutMS: 3000 });
    try {
      const h = await c.db('admin').command({ hello: 1 }, { timeoutMS: 3000 });
      return h.isWritablePrimary !== true;
    } catch {
      return null;
    } finally {
      await c.close(true).catch(() => undefined);
    }
  }
}

export const mongoEngine = {
  name: 'mongodb',
  position: mongoPosition,
  supports: SUPPORTED,
  electsItself: true,
  hello: mongoHelloBytes(),
  prober: (conn: Connection, timeoutMs: number, onLost?: () => void) => new MongoProber(conn, timeoutMs, onLost),
  node: (conn: Connection) => new MongoNodeActions(conn),
} satisfies Engine;

export { MongoProber, mongoObservation, toNodeProbe, mongoPosition, type MongoObservation, type MongoMemberView, type OpTime } from './probe.js';
export { MongoSteering, type SwitchoverOptions, type SwitchoverResult, type SteerHow } from './actions.js';
export { selectServers, suitableServers, inLatencyWindow, staleness, validateReadPreference, type ReadPreference, type ReadMode, type TopologyDescription, type ServerDescription } from './select.js';
export { foldMongo, initialMongoState, mongoRouting, topologyDescription, compareElection, type MongoSetState, type MongoFact, type MongoRouting, type MemberReport } from './topology.js';
