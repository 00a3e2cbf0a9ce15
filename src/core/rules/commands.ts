/**
 * Rule: commands. Operators' commands (pause, resume, switchover, failover), oldest
 * first: carried out, or refused with the reason journaled. One change of state per
 * pass: the next command is judged against what this one did. Pure.
 */
import type { JournalDraft } from '../../events/journal.js';
import { electsItself } from '../../engines/traits.js';
import type { Settings } from '../settings.js';
import type { ClusterState, PendingCommand } from '../state.js';
import { chooseCandidate } from './candidate.js';
import { observedHealth } from './health.js';
import { startOperation } from './operation.js';
import { evidenceAround, type Decision, type Pass } from './pass.js';

/** Stops the pass once a command changed the state the rest of it would judge. */
export function commandsRule({ state, now, s, out }: Pass): boolean {
  for (const cmd of Object.values(state.commands).sort((a, b) => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1))) {
    if (carryOut(state, cmd, now, s, out)) return true;
  }
  return false;
}

/** The member whose agent steers a set (freezes, unfreezes): its primary's, else the first that reports it reachable. */
function steeringNode(state: ClusterState): string | null {
  if (state.primary) return state.primary;
  return Object.keys(state.nodes).sort().find((id) => state.soft[id]?.obs.reachable === true) ?? null;
}

/** The command's stream id, journaled with its answer (where a restarted coordinator reads on). */
function streamOf(cmd: PendingCommand): { commandStreamId?: string } {
  return cmd.streamId && /^\d+-\d+$/.test(cmd.streamId) ? { commandStreamId: cmd.streamId } : {};
}

/**
 * An operator's command: carry it out, or journal why not. Returns true when it changed
 * the state the rest of this pass would judge (paused, resumed, an operation started).
 */
function carryOut(state: ClusterState, cmd: PendingCommand, now: number, s: Settings, out: Decision[]): boolean {
  const append = (entry: JournalDraft): void => {
    out.push({ type: 'append', entry });
  };
  const reject = (reason: string): false => {
    append({ type: 'command.rejected', commandId: cmd.id, action: cmd.action, reason, ...streamOf(cmd) });
    return false;
  };
  switch (cmd.action) {
    case 'pause': {
      if (state.paused) return reject('already paused');
      const sets = electsItself(state.engine);
      if (cmd.freezeSecs !== undefined && !sets) return reject(`freezeSecs: only a replica set that elects itself (mongodb) freezes elections; this cluster's engine is ${state.engine}`);
      const steerer = cmd.freezeSecs !== undefined ? steeringNode(state) : null;
      if (cmd.freezeSecs !== undefined && !steerer) return reject('freezeSecs: no member reports: nothing to freeze elections on');
      append({ type: 'cluster.paused', by: cmd.by, commandId: cmd.id, ...streamOf(cmd), ...(cmd.freezeSecs !== undefined ? { freezeSecs: cmd.freezeSecs } : {}) });
      // a set: its secondaries may not be elected meanwhile (replSetFreeze), on the agent of its primary
      if (steerer && cmd.freezeSecs !== undefined) out.push({ type: 'job', job: { node: steerer, action: 'freeze', operationId: cmd.id, freezeSecs: cmd.freezeSecs } });
      return true;
    }
    case 'resume': {
      if (!state.paused) return reject('not paused');
      append({ type: 'cluster.resumed', by: cmd.by, commandId: cmd.id, ...streamOf(cmd) });
      const steerer = electsItself(state.engine) ? steeringNode(state) : null;
      if (steerer) out.push({ type: 'job', job: { node: steerer, action: 'freeze', operationId: cmd.id, freezeSecs: 0 } });
      return true;
    }
    case 'switchover':
    case 'failover': {
      if (state.operation) return reject(`operation ${state.operation.id} is in flight`);
      if (cmd.action === 'failover' && electsItself(state.engine)) return reject(`a ${state.engine} replica set elects its own primary: switchyard does not fail over (use switchover to hand over from a healthy primary)`);
      if (cmd.to !== undefined && !state.nodes[cmd.to]) return reject(`no node ${cmd.to}`);
      // health as observed now, not as last journaled: this pass may be journaling a change
      const primary = state.primary ? state.nodes[state.primary] : undefined;
      const primaryUp = !!primary && observedHealth(state, primary.id, now, s).healthy;
      if (cmd.action === 'switchover') {
        if (!primary || !primaryUp) return reject('no healthy primary to switch over from: use failover --to NODE');
        if (cmd.to === primary.id) return reject(`${cmd.to} is already the primary`);
        if (cmd.to !== undefined && !observedHealth(state, cmd.to, now, s).healthy) return reject(`${cmd.to} is not a healthy replica`);
      } else {
        if (cmd.to === undefined) return reject('failover needs a target (to)');
        if (primaryUp) return reject(`the primary ${primary.id} is healthy: use switchover`);
      }
      const choice = chooseCandidate(state, now, s, cmd.to);
      if (!choice.ok) return reject(choice.reason);
      const from = state.primary;
      const evidence = evidenceAround(state, from, now);
      // the table's start row journals it, then the first step (src/core/machine.ts)
      startOperation(
        { state, now, s, out },
        {
          type: 'failover.started',
          // one format for operation ids, automatic or asked for: fo-N failovers, so-N switchovers
          operationId: `${cmd.action === 'switchover' ? 'so' : 'fo'}-${state.opSeq + 1}`,
          kind: cmd.action,
          from,
          to: choice.node,
          reason: `${cmd.action} requested by ${cmd.by}`,
          manual: true,
          commandId: cmd.id,
          ...streamOf(cmd),
          lostBytes: cmd.action === 'switchover' ? 0 : choice.lostBytes,
          evidence,
          ...(cmd.action === 'failover' ? { deposed: from } : {}),
        },
      );
      return true;
    }
  }
}
