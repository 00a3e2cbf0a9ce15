/**
 * What an alert says, and how each sink kind wants it: Slack's incoming-webhook
 * message, PagerDuty Events API v2 (trigger / resolve with a dedup key), or the
 * journal entry as JSON. Pure: no I/O.
 */
import type { JournalEntry } from '../events/journal.js';

export type AlertEventName =
  | 'failover.started'
  | 'failover.completed'
  | 'failover.failed'
  | 'node.fenced'
  | 'loss.measured'
  | 'cluster.paused'
  | 'cluster.resumed'
  | 'node.unhealthy'
  | 'node.healthy';

export interface Alert {
  event: AlertEventName;
  cluster: string;
  /** the journal id it comes from (for node.unhealthy: the health change that started it) */
  journalId: string;
  /** PagerDuty dedup key: a resolve names the incident its trigger opened */
  dedupKey: string;
  action: 'trigger' | 'resolve';
  severity: 'critical' | 'error' | 'warning' | 'info';
  summary: string;
  details: Record<string, unknown>;
}

/** The alert a journal entry raises at once, if any (node.unhealthy is raised later, by time). */
export function alertFor(cluster: string, journalId: string, e: JournalEntry): Alert | null {
  const base = { cluster, journalId };
  switch (e.type) {
    case 'failover.started':
      return {
        ...base,
        event: 'failover.started',
        dedupKey: `switchyard/${cluster}/operation/${e.operationId}`,
        action: 'trigger',
        severity: e.kind === 'switchover' ? 'info' : 'critical',
        summary: `[${cluster}] ${e.kind} started: ${e.from ?? '(none)'} → ${e.to} (${e.reason})`,
        details: { operationId: e.operationId, kind: e.kind, from: e.from, to: e.to, reason: e.reason, manual: e.manual },
      };
    case 'failover.completed':
      if (e.outcome === 'success') {
        return {
          ...base,
          event: 'failover.completed',
          dedupKey: `switchyard/${cluster}/operation/${e.operationId}`,
          action: 'resolve',
          severity: 'info',
          summary: `[${cluster}] operation ${e.operationId} completed in ${Math.round(e.durationMs)} ms`,
          details: { operationId: e.operationId, durationMs: e.durationMs, reason: e.reason },
        };
      }
      return {
        ...base,
        event: 'failover.failed',
        dedupKey: `switchyard/${cluster}/operation/${e.operationId}`,
        action: 'trigger',
        severity: 'critical',
        summary: `[${cluster}] operation ${e.operationId} ${e.outcome}: ${e.reason}`,
        details: { operationId: e.operationId, outcome: e.outcome, durationMs: e.durationMs, reason: e.reason },
      };
    case 'node.fenced':
      return {
        ...base,
        event: 'node.fenced',
        dedupKey: `switchyard/${cluster}/node/${e.node}/fenced/${journalId}`,
        action: 'trigger',
        severity: 'error',
        summary: `[${cluster}] ${e.node} fenced: ${e.reason}`,
        details: { node: e.node, reason: e.reason },
      };
    case 'failover.loss':
      return {
        ...base,
        event: 'loss.measured',
        dedupKey: `switchyard/${cluster}/operation/${e.operationId}/loss`,
        action: 'trigger',
        severity: e.lostBytes > 0 ? 'critical' : 'info',
        summary: `[${cluster}] operation ${e.operationId} lost ${e.lostBytes} bytes of WAL on ${e.node}`,
        details: { operationId: e.operationId, node: e.node, lostBytes: e.lostBytes, forkLsn: e.forkLsn, walEnd: e.walEnd },
      };
    case 'cluster.paused':
      return { ...base, event: 'cluster.paused', dedupKey: `switchyard/${cluster}/paused`, action: 'trigger', severity: 'warning', summary: `[${cluster}] automatic failover paused by ${e.by}`, details: { by: e.by } };
    case 'cluster.resumed':
      return { ...base, event: 'cluster.resumed', dedupKey: `switchyard/${cluster}/paused`, action: 'resolve', severity: 'info', summary: `[${cluster}] automatic failover resumed by ${e.by}`, details: { by: e.by } };
    default:
      return null;
  }
}

export function unhealthyAlert(cluster: string, node: string, journalId: string, reason: string, forMs: number): Alert {
  return {
    event: 'node.unhealthy',
    cluster,
    journalId,
    dedupKey: `switchyard/${cluster}/node/${node}/unhealthy/${journalId}`,
    action: 'trigger',
    severity: 'error',
    summary: `[${cluster}] ${node} unhealthy for ${Math.round(forMs / 1000)} s: ${reason}`,
    details: { node, reason },
  };
}

export function healthyAlert(cluster: string, node: string, unhealthyId: string, journalId: string): Alert {
  return {
    event: 'node.healthy',
    cluster,
    journalId,
    dedupKey: `switchyard/${cluster}/node/${node}/unhealthy/${unhealthyId}`,
    action: 'resolve',
    severity: 'info',
    summary: `[${cluster}] ${node} healthy again`,
    details: { node },
  };
}

const SLACK_ICON: Record<Alert['severity'], string> = { critical: ':rotating_light:', error: ':red_circle:', warning: ':warning:', info: ':white_check_mark:' };

export function slackPayload(a: Alert): Record<string, unknown> {
  const fields = Object.entries(a.details)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `*${k}*: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('  ');
  return {
    text: `${SLACK_ICON[a.severity]} ${a.summary}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${SLACK_ICON[a.severity]} *${a.summary}*` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${a.event} · journal ${a.journalId}${fields ? ` · ${fields}` : ''}` }] },
    ],
  };
}

export function pagerDutyPayload(a: Alert, routingKey: string, source: string): Record<string, unknown> {
  if (a.action === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key: a.dedupKey };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: a.dedupKey,
    payload: { summary: a.summary.slice(0, 1024), source, severity: a.severity, component: a.cluster, group: 'switchyard', class: a.event, custom_details: { ...a.details, journalId: a.journalId } },
  };
}

export function genericPayload(a: Alert): Record<string, unknown> {
  return { ...a };
}
