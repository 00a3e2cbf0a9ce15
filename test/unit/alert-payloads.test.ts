/** Alert payloads: which journal entries alert, Slack's format, PagerDuty Events v2 with dedup keys. Pure. */
import { describe, expect, it } from 'vitest';
import { alertFor, healthyAlert, pagerDutyPayload, slackPayload, unhealthyAlert } from '../../src/alerts/payloads.js';
import type { JournalEntry } from '../../src/events/journal.js';

const base = { v: 1, at: 1_800_000_000_000, epoch: 3 } as const;
const e = (x: Record<string, unknown>): JournalEntry => ({ ...base, ...x }) as unknown as JournalEntry;

describe('alerts from journal entries', () => {
  it('maps the alerting entries and ignores the rest', () => {
    const started = alertFor('main', '1-0', e({ type: 'failover.started', operationId: 'fo-1', kind: 'failover', from: 'pg1', to: 'pg2', reason: 'primary refused', manual: false, lostBytes: 0, evidence: [] }))!;
    expect(started).toMatchObject({ event: 'failover.started', action: 'trigger', severity: 'critical', dedupKey: 'switchyard/main/operation/fo-1' });
    expect(started.summary).toBe('[main] failover started: pg1 → pg2 (primary refused)');
    const ok = alertFor('main', '2-0', e({ type: 'failover.completed', operationId: 'fo-1', outcome: 'success', durationMs: 812.4, reason: 'promoted' }))!;
    expect(ok).toMatchObject({ event: 'failover.completed', action: 'resolve', dedupKey: started.dedupKey });
    const failed = alertFor('main', '3-0', e({ type: 'failover.completed', operationId: 'fo-2', outcome: 'failed', durationMs: 15000, reason: 'promotion timed out' }))!;
    expect(failed).toMatchObject({ event: 'failover.failed', action: 'trigger', severity: 'critical' });
    expect(alertFor('main', '4-0', e({ type: 'failover.loss', operationId: 'fo-1', node: 'pg1', walEnd: '0/3000100', forkLsn: '0/3000000', lostBytes: 256 }))).toMatchObject({ event: 'loss.measured', severity: 'critical' });
    expect(alertFor('main', '5-0', e({ type: 'node.fenced', node: 'pg1', reason: 'lost Redis' }))).toMatchObject({ event: 'node.fenced', dedupKey: 'switchyard/main/node/pg1/fenced/5-0' });
    expect(alertFor('main', '6-0', e({ type: 'cluster.paused', by: 'alice' }))!.summary).toBe('[main] automatic failover paused by alice');
    expect(alertFor('main', '7-0', e({ type: 'leader.changed', coordinator: 'c1' }))).toBe(null);
  });

  it('Slack: an incoming-webhook message with text and blocks', () => {
    const a = unhealthyAlert('main', 'pg3', '9-0', 'probe timeout', 31_000);
    const p = slackPayload(a) as { text: string; blocks: Array<{ type: string }> };
    expect(p.text).toBe(':red_circle: [main] pg3 unhealthy for 31 s: probe timeout');
    expect(p.blocks.map((b) => b.type)).toEqual(['section', 'context']);
  });

  it('PagerDuty Events v2: trigger with payload, resolve with the same dedup key only', () => {
    const down = unhealthyAlert('main', 'pg3', '9-0', 'probe timeout', 31_000);
    const t = pagerDutyPayload(down, 'R0UTING', 'switchyard@c1');
    expect(t).toEqual({
      routing_key: 'R0UTING',
      event_action: 'trigger',
      dedup_key: 'switchyard/main/node/pg3/unhealthy/9-0',
      payload: { summary: '[main] pg3 unhealthy for 31 s: probe timeout', source: 'switchyard@c1', severity: 'error', component: 'main', group: 'switchyard', class: 'node.unhealthy', custom_details: { node: 'pg3', reason: 'probe timeout', journalId: '9-0' } },
    });
    const up = pagerDutyPayload(healthyAlert('main', 'pg3', '9-0', '12-0'), 'R0UTING', 'switchyard@c1');
    expect(up).toEqual({ routing_key: 'R0UTING', event_action: 'resolve', dedup_key: 'switchyard/main/node/pg3/unhealthy/9-0' });
  });
});
