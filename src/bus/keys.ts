/**
 * Redis key names. `{c}` is the cluster name inside a hash tag, so every key of one
 * cluster lives in one Redis Cluster slot.
 */
const CLUSTER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const NODE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export function assertClusterName(name: string): void {
  if (!CLUSTER_NAME.test(name)) throw new Error(`invalid cluster name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 _ . -`);
}

export function assertNodeId(id: string): void {
  if (!NODE_ID.test(id)) throw new Error(`invalid node id ${JSON.stringify(id)}: use 1-64 of A-Z a-z 0-9 _ . -`);
}

export function keys(cluster: string) {
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
    /** BullMQ prefix: queue `<node>` lives at `sy:{c}:node:<node>:*` */
    queuePrefix: `${base}:node`,
  };
}

export type ClusterKeys = ReturnType<typeof keys>;

/** Deterministic BullMQ job id: `<epoch>-<operationId>-<action>-<node>`, no colons. */
export function jobIdFor(epoch: number, operationId: string, action: string, node: string): string {
  return `${epoch}-${operationId}-${action}-${node}`.replace(/:/g, '_');
}
