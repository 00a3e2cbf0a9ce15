/** A node its agent keeps out of rotation (a rejoin that would discard data while re-cloning is off). */
import { describe, expect, it } from 'vitest';
import { DEAD, healthyCluster } from './helpers.js';

describe('out of rotation', () => {
  it('journals the agent\'s reason, even for a node already journaled unhealthy, once', () => {
    const sim = healthyCluster();
    const down = sim.beat(2_000, { pg3: DEAD });
    expect(down.one('node.health-changed')).toMatchObject({ node: 'pg3', healthy: false, reason: 'process exited' });
    const why = 'RECLONE_DISABLED: pg_rewind failed (...); re-cloning is off (rejoin.reclone): pg3 stays out of rotation with its data directory untouched';
    const d = sim.beat(3_000, { pg3: { ...DEAD, outOfRotation: why } });
    expect(d.one('node.health-changed')).toEqual({ type: 'node.health-changed', node: 'pg3', healthy: false, reason: `out of rotation: ${why}` });
    expect(sim.beat(4_000, { pg3: { ...DEAD, outOfRotation: why } }).types).toEqual([]);
    expect(sim.table().replicas.find((r) => r.id === 'pg3')?.healthy).toBe(false);
    expect(sim.state.nodes['pg3']?.healthReason).toBe(`out of rotation: ${why}`);
  });
});
