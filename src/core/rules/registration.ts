/** Rule: registration. Every node that reports is known, with its current address and priority. Pure. */
import { append, type Pass } from './pass.js';

export function registrationRule({ state, out }: Pass): void {
  for (const [id, soft] of Object.entries(state.soft)) {
    const n = state.nodes[id];
    const o = soft.obs;
    if (!n || n.host !== o.host || n.port !== o.port || n.priority !== o.priority) {
      append(out, { type: 'node.registered', node: id, host: o.host, port: o.port, priority: o.priority });
    }
  }
}
