/**
 * Redis key names. `{c}` is the cluster name inside a hash tag, so every key of one
 * cluster lives in one Redis Cluster slot.
 */
import { SwitchyardError } from '../errors.js';

const CLUSTER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A cluster name must stay inside its hash tag: no braces, no colons (the config schema says the same). */
export function assertClusterName(name: string): void {
  if (!CLUSTER_NAME.test(name)) throw new SwitchyardError('CONFIG_INVALID', `invalid cluster name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 _ . -`);
}

export function keys(cluster: string) {
  assertClusterName(cluster);
  const base = `sy:{${cluster}}`;
  return {
    obs: `${base}:obs`,
    log: `${base}:log`,
    /** operators' commands (pause, switchover, …), written by any coordinator's API */
    cmd: `${base}:cmd`,
    leader: `${base}:leader`,
    epoch: `${base}:epoch`,
    routing: `${base}:routing`,
    routingChannel: `${base}:routing:changed`,
    /** PUBLISHed after every append to a stream: coordinators read (in Lua) when woken */
    wake: `${base}:wake`,
    /** the journal's primary `{ id, host, port }`, even while it is down (agents read it) */
    primary: `${base}:primary`,
    snapshot: `${base}:snapshot`,
    /** PUBLISHed by the leader (payload: a node id, or '*') when it waits on a fresh observation: agents probe at once */
    probe: `${base}:probe`,
    /** timing trace of operations (see trace.ts), capped */
    trace: `${base}:trace`,
    /** hash node → boots counted (HINCRBY at agent start): orders an agent's boots without comparing wall clocks */
    boots: `${base}:boots`,
    /** BullMQ prefix: queue `<node>` lives at `sy:{c}:node:<node>:*` */
    queuePrefix: `${base}:node`,
  };
}

export type ClusterKeys = ReturnType<typeof keys>;

/** Deterministic BullMQ job id: `<epoch>-<operationId>-<action>-<node>`, no colons. */
export function jobIdFor(epoch: number, operationId: string, action: string, node: string): string {
  return `${epoch}-${operationId}-${action}-${node}`.replace(/:/g, '_');
}
