/**
 * A restarted coordinator reads the command stream from where the journal says commands
 * were last consumed (issue 7 §4): every answer to a command journals the command's stream
 * id, and the fold keeps the last one.
 */
import { describe, expect, it } from 'vitest';
import { fold } from '../../src/core/evolve.js';
import { initialState, type CoreEvent } from '../../src/core/state.js';
import { fromSnapshot, toSnapshot } from '../../src/core/snapshot.js';
import { healthyCluster } from './helpers.js';

describe('command stream cursor', () => {
  it('journals the stream id of each command it answers; the fold keeps the last one', () => {
    const sim = healthyCluster();
    expect(sim.state.commandsReadTo).toBeNull();
    sim.fold({ kind: 'command', id: '2000-0', receivedAt: 2_000, entry: { type: 'command', v: 1, id: 'c1', action: 'pause', by: 'ops', at: 2_000 } });
    const d = sim.pass(2_000);
    expect(d.one('cluster.paused')).toMatchObject({ commandId: 'c1', commandStreamId: '2000-0' });
    expect(sim.state.commandsReadTo).toBe('2000-0');
    // a refused command moves the cursor too
    sim.fold({ kind: 'command', id: '2100-3', receivedAt: 2_100, entry: { type: 'command', v: 1, id: 'c2', action: 'pause', by: 'ops', at: 2_100 } });
    expect(sim.pass(2_100).one('command.rejected')).toMatchObject({ commandId: 'c2', commandStreamId: '2100-3' });
    expect(sim.state.commandsReadTo).toBe('2100-3');
    // a coordinator that folds the journal alone (a restart) knows the cursor, and a snapshot keeps it
    const journal = sim.journal.map((r): CoreEvent => ({ kind: 'journal', id: r.id, entry: r.entry }));
    const replayed = fold(initialState(sim.state.cluster), journal);
    expect(replayed.commandsReadTo).toBe('2100-3');
    expect(fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(replayed))), replayed.cluster)?.commandsReadTo).toBe('2100-3');
  });
});
