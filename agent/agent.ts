/**
 * The sidecar: probe loop (its node, and the current primary from this host),
 * publisher (XADD to sy:{c}:obs), job worker (BullMQ queue of its node), and, given a
 * data directory, the keeper of its node's process. In layers, each its own file:
 * core.ts (state, observation, publishing) → probe-loop.ts (probes, self-fencing) →
 * supervisor.ts (the node's process) → jobs.ts (the coordinator's jobs) → Agent (start, stop).
 */
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { connectRedis } from '../src/errors.js';
import { epochOfLeaseValue } from '../src/bus/lease.js';
import { storeOptions } from '../src/config/connect.js';
import type { JobData } from './job.js';
import { JobWorker } from './jobs.js';

export { JobRefused, type JobData } from './job.js';
export { tcpCheck } from './peer.js';

export class Agent extends JobWorker {
  async start(): Promise<void> {
    await connectRedis(this.redis, this.cfg.redis);
    this.bootSeq = await this.redis.hincrby(this.k.boots, this.cfg.node, 1);
    this.epochSeen = epochOfLeaseValue(await this.redis.get(this.k.leader));
    await this.refreshPrimary();
    if (this.managed) {
      this.managed.onExit(() => this.onNodeExit());
      await this.bootNode();
    }
    this.sub = new Redis(this.cfg.redis, { ...storeOptions(this.cfg), lazyConnect: true, connectTimeout: 1000 });
    this.sub.on('error', (err) => this.log.debug({ err: err.message }, 'probe-request redis error'));
    this.sub.on('message', (_channel: string, node: string) => {
      if (node === this.cfg.node || node === '*') this.probeNow();
    });
    await connectRedis(this.sub, this.cfg.redis);
    await this.sub.subscribe(this.k.probe);
    this.workerConn = new Redis(this.cfg.redis, { ...storeOptions(this.cfg), maxRetriesPerRequest: null });
    this.workerConn.on('error', (err) => this.log.debug({ err: err.message }, 'worker redis error'));
    this.worker = new Worker(this.cfg.node, (job: Job<JobData>) => this.runJob(job), {
      connection: this.workerConn,
      prefix: this.k.queuePrefix,
      concurrency: 1,
      autorun: true,
    });
    this.worker.on('error', (err) => this.log.warn({ err: err.message }, 'worker error'));
    this.schedule(0);
    this.log.info({ node: this.cfg.node, bootId: this.bootId, managed: !!this.managed }, 'agent started');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.worker?.close().catch(() => {});
    this.workerConn?.disconnect();
    this.sub?.disconnect();
    await this.probing?.catch(() => {});
    await this.prober.close();
    this.node.close?.();
    if (this.managed) await this.managed.stop('fast').catch((err: unknown) => this.log.warn({ err: (err as Error).message }, `stopping the ${this.engine.name} server`));
    this.redis.disconnect();
  }
}
