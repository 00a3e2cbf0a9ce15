/**
 * The MongoDB client: the official `mongodb` driver, seeded from switchyard's routing table,
 * so an application needs only the routing URL and the cluster name. The driver follows
 * elections itself (SDAM); this wrapper validates the read preference up front, logs
 * topology changes through pino and carries the helpers readFromSecondary,
 * writeWithConcern, getReplicaSetStatus and close.
 */
import { MongoClient, ReadPreference as DriverReadPreference, type Db, type Document, type Filter, type TopologyDescriptionChangedEvent, type WriteConcernSettings } from 'mongodb';
import type { Logger } from 'pino';
import { SwitchyardError } from '../errors.js';
import { createLogger } from '../log.js';
import { mongoObservation, type MongoObservation } from '../engines/mongo/probe.js';
import { validateReadPreference, type ReadMode } from '../engines/mongo/select.js';

export interface MongoClientOptions {
  /** the routing API, e.g. http://127.0.0.1:7400 */
  routing: string;
  cluster: string;
  /** default read preference (default 'primary') */
  readPreference?: ReadMode;
  /** default maxStalenessSeconds for reads away from the primary (>= 90; not with 'primary') */
  maxStalenessSeconds?: number;
  /** default write concern (default { w: 'majority' }) */
  writeConcern?: WriteConcernSettings;
  /** default database (default 'test') */
  database?: string;
  /** the replica set name, when the routing table does not carry it */
  replicaSet?: string;
  /** the driver's heartbeat (default 10 000 ms; the driver's minimum is 500) */
  heartbeatFrequencyMS?: number;
  serverSelectionTimeoutMS?: number;
  /** credentials, when the set needs them */
  auth?: { username: string; password: string };
  logger?: Logger;
}

/** What the routing table gives a MongoDB client (a subset of GET /v1/clusters/:c/routing). */
interface RoutingTable {
  engine?: string;
  setName?: string;
  primary: { host: string; port: number } | null;
  replicas?: { host: string; port: number }[];
}

export type MongoWrite = { insert: Document } | { update: { filter: Filter<Document>; set: Document } } | { delete: Filter<Document> };

export interface SwitchyardMongoClient {
  /** the driver's client, for anything the helpers do not cover */
  readonly driver: MongoClient;
  /** the seed list taken from the routing table */
  readonly seeds: string[];
  db(name?: string): Db;
  /** reads from a secondary (secondaryPreferred when none is fresh enough is not done: 'secondary' mode), within maxStalenessSeconds */
  readFromSecondary(collection: string, query?: Filter<Document>, maxStalenessSeconds?: number): Promise<Document[]>;
  /** one write with the client's (or the given) write concern; the driver retries it once across an election */
  writeWithConcern(collection: string, write: MongoWrite, writeConcern?: WriteConcernSettings): Promise<{ acknowledged: boolean; n: number; insertedId?: unknown }>;
  /** the set as the current primary (or any member) sees it: replSetGetStatus + hello */
  getReplicaSetStatus(): Promise<MongoObservation>;
  close(): Promise<void>;
}

async function fetchRouting(routing: string, cluster: string): Promise<RoutingTable> {
  const url = `${routing.replace(/\/$/, '')}/v1/clusters/${encodeURIComponent(cluster)}/routing`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new SwitchyardError('INVALID_OPTIONS', `routing: GET ${url} answered ${String(res.status)}`);
  return (await res.json()) as RoutingTable;
}

/** Connects the driver to the set the routing table names. */
export async function createMongoClient(opts: MongoClientOptions): Promise<SwitchyardMongoClient> {
  const log = opts.logger ?? createLogger('switchyard-mongo-client');
  const heartbeatFrequencyMS = opts.heartbeatFrequencyMS ?? 10_000;
  const mode = opts.readPreference ?? 'primary';
  validateReadPreference({ mode, maxStalenessSeconds: opts.maxStalenessSeconds }, heartbeatFrequencyMS);
  const table = await fetchRouting(opts.routing, opts.cluster);
  if (table.engine !== undefined && table.engine !== 'mongodb') throw new SwitchyardError('INVALID_OPTIONS', `routing: cluster ${opts.cluster} runs engine ${table.engine}, not mongodb`);
  const nodes = [...(table.primary ? [table.primary] : []), ...(table.replicas ?? [])];
  const seeds = [...new Set(nodes.map((n) => `${n.host}:${String(n.port)}`))];
  if (seeds.length === 0) throw new SwitchyardError('INVALID_OPTIONS', `routing: cluster ${opts.cluster} lists no members to seed from`);
  const setName = opts.replicaSet ?? table.setName;
  const params = setName ? `?replicaSet=${encodeURIComponent(setName)}` : '';
  const readPreference = opts.maxStalenessSeconds !== undefined ? new DriverReadPreference(mode, undefined, { maxStalenessSeconds: opts.maxStalenessSeconds }) : DriverReadPreference.fromString(mode);
  const driver = new MongoClient(`mongodb://${seeds.join(',')}/${params}`, {
    readPreference,
    writeConcern: opts.writeConcern ?? { w: 'majority' },
    heartbeatFrequencyMS,
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 30_000,
    ...(opts.auth ? { auth: opts.auth } : {}),
  });
  driver.on('topologyDescriptionChanged', (e: TopologyDescriptionChangedEvent) => {
    const prev = e.previousDescription;
    const next = e.newDescription;
    const primaryOf = (d: typeof next) => [...d.servers.values()].find((s) => s.type === 'RSPrimary')?.address ?? null;
    if (prev.type !== next.type || primaryOf(prev) !== primaryOf(next)) {
      log.info({ cluster: opts.cluster, from: prev.type, to: next.type, primary: primaryOf(next), previousPrimary: primaryOf(prev) }, 'mongo topology changed');
    }
  });
  await driver.connect();
  log.info({ cluster: opts.cluster, seeds, setName: setName ?? null }, 'mongo client connected');
  const dbName = opts.database ?? 'test';

  return {
    driver,
    seeds,
    db: (name = dbName) => driver.db(name),
    async readFromSecondary(collection, query = {}, maxStalenessSeconds = opts.maxStalenessSeconds) {
      validateReadPreference({ mode: 'secondary', maxStalenessSeconds }, heartbeatFrequencyMS);
      const rp = new DriverReadPreference('secondary', undefined, maxStalenessSeconds !== undefined ? { maxStalenessSeconds } : {});
      return driver.db(dbName).collection(collection).find(query, { readPreference: rp }).toArray();
    },
    async writeWithConcern(collection, write, writeConcern) {
      const coll = driver.db(dbName).collection(collection);
      const wc = writeConcern ? { writeConcern } : {};
      if ('insert' in write) {
        const r = await coll.insertOne({ ...write.insert }, wc);
        return { acknowledged: r.acknowledged, n: 1, insertedId: r.insertedId };
      }
      if ('update' in write) {
        const r = await coll.updateMany(write.update.filter, { $set: write.update.set }, wc);
        return { acknowledged: r.acknowledged, n: r.modifiedCount };
      }
      const r = await coll.deleteMany(write.delete, wc);
      return { acknowledged: r.acknowledged, n: r.deletedCount };
    },
    async getReplicaSetStatus() {
      const admin = driver.db('admin');
      const hello = await admin.command({ hello: 1 });
      const status = await admin.command({ replSetGetStatus: 1 }).catch(() => null);
      return mongoObservation(hello, status);
    },
    async close() {
      await driver.close();
      log.info({ cluster: opts.cluster }, 'mongo client closed');
    },
  };
}
