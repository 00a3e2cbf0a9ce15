/**
 * Standby names as node ids. PostgreSQL names its standbys by `application_name` (the
 * node id); a Redis master reports its replicas by address (`slaveN:ip=…,port=…`). The
 * fold maps an address to the node registered (or reporting) at it, so the routing
 * table and the sync rule find a replica under its id whatever the engine. Pure.
 */
import type { Observation } from '../events/observation.js';
import type { ClusterState } from './state.js';

/** The observation with each standby named by node id where its name is a known node's `host:port` (unique); unchanged otherwise. */
export function standbysByNodeId(state: Pick<ClusterState, 'nodes' | 'soft'>, obs: Observation): Observation {
  if (!obs.standbys || obs.standbys.every((s) => state.nodes[s.name] || state.soft[s.name])) return obs;
  const byAddress = new Map<string, string | null>(); // null: two nodes claim the address
  const add = (id: string, host: string, port: number): void => {
    const key = `${host}:${port}`;
    const had = byAddress.get(key);
    byAddress.set(key, had === undefined || had === id ? id : null);
  };
  for (const n of Object.values(state.nodes)) add(n.id, n.host, n.port);
  for (const [id, s] of Object.entries(state.soft)) add(id, s.obs.host, s.obs.port);
  let changed = false;
  const standbys = obs.standbys.map((s) => {
    if (state.nodes[s.name] || state.soft[s.name]) return s;
    const id = byAddress.get(s.name);
    if (!id || id === obs.node) return s;
    changed = true;
    return { ...s, name: id };
  });
  return changed ? { ...obs, standbys } : obs;
}
