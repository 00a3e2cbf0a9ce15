/** Rule: registration. Every node that reports is known, with its current address, priority and zone. Pure. */
import { append, type Pass } from './pass.js';

export function registrationRule({ state, out }: Pass): void {
  for (const [id, soft] of Object.entries(state.soft)) {
    const n = state.nodes[id];
    const o = soft.obs;
    // (an agent with no zone configured reports none: the field stays out of the entry)
    if (!n || n.host !== o.host || n.port !== o.port || n.priority !== o.priority || n.zone !== o.zone) {
      append(out, { type: 'node.registered', node: id, host: o.host, port: o.port, priority: o.priority, ...(o.zone !== undefined ? { zone: o.zone } : {}) });
    }
  }
}
