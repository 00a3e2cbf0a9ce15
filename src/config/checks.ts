/**
 * Timing and consistency checks across fields, each with its reason. They run after
 * the schema accepted every field on its own; each problem is one line naming a path.
 */
import { DEFAULT_SETTINGS } from '../core/settings.js';
import type { AgentConfig, CoordinatorConfig } from './schemas.js';

export function agentCrossChecks(c: AgentConfig): string[] {
  const out: string[] = [];
  if (c.probeIntervalMs + c.probeTimeoutMs >= c.fenceAfterMs) {
    out.push(
      `fenceAfterMs: ${c.fenceAfterMs} must exceed probeIntervalMs + probeTimeoutMs (${c.probeIntervalMs} + ${c.probeTimeoutMs} = ${c.probeIntervalMs + c.probeTimeoutMs}): an isolated primary fences itself from its probe loop, which must run at least once within fenceAfterMs`,
    );
  }
  if ((c.sslmode === 'verify-ca' || c.sslmode === 'verify-full') && !c.sslrootcert) {
    out.push(`sslrootcert: required with sslmode ${c.sslmode} (the CA that signed the server's certificate)`);
  }
  if (c.sslmode === 'disable' && (c.sslrootcert || c.sslcert)) out.push(`sslmode: "disable" ignores sslrootcert/sslcert; set sslmode to require, verify-ca or verify-full`);
  if (!!c.sslcert !== !!c.sslkey) out.push(`${c.sslcert ? 'sslkey' : 'sslcert'}: a client certificate needs both sslcert and sslkey`);
  out.push(...storeChecks(c));
  if (c.engine === 'mongodb') {
    // a replica set elects itself and switchyard does not start a mongod: only the connection counts
    const managed = (['dataDir', 'pgBin', 'listen', 'rejoin'] as const).filter((k) => c[k] !== undefined);
    for (const k of managed) out.push(`${k}: not supported with engine mongodb (the agent observes a mongod it does not manage; remove ${k})`);
  }
  return out;
}

function storeChecks(c: { redis: string; redisTls?: { certFile?: string; keyFile?: string; caFile?: string } | undefined }): string[] {
  const out: string[] = [];
  const t = c.redisTls;
  if (t && !c.redis.startsWith('rediss://')) out.push(`redis: redisTls is set but the URL is ${JSON.stringify(c.redis.replace(/\/\/[^@]*@/, '//'))}; use rediss:// for TLS`);
  if (t && !!t.certFile !== !!t.keyFile) out.push(`redisTls.${t.certFile ? 'keyFile' : 'certFile'}: a client certificate needs both certFile and keyFile`);
  return out;
}

export function coordinatorCrossChecks(c: CoordinatorConfig): string[] {
  const out: string[] = [];
  const renew = c.leaseRenewMs ?? Math.max(100, Math.floor(c.leaseTtlMs / 3));
  const timeout = c.redisTimeoutMs ?? 1000;
  // Patroni: loop_wait + 2 × retry_timeout ≤ ttl
  if (renew + 2 * timeout > c.leaseTtlMs) {
    out.push(
      `leaseTtlMs: ${c.leaseTtlMs} is too short: the renew interval plus a renewal retried once must fit in it (leaseRenewMs ${renew} + 2 × redisTimeoutMs ${timeout} = ${renew + 2 * timeout}), or a leader loses its lease to one slow Redis call (as Patroni's loop_wait + 2×retry_timeout ≤ ttl)`,
    );
  }
  if (c.tickMs >= c.leaseTtlMs) out.push(`tickMs: ${c.tickMs} must be below leaseTtlMs (${c.leaseTtlMs}): a leader must decide at least once per lease`);
  const names = new Set<string>();
  c.clusters.forEach((cl, i) => {
    if (names.has(cl.name)) out.push(`clusters[${i}].name: ${JSON.stringify(cl.name)} is listed twice`);
    names.add(cl.name);
    const s = { ...DEFAULT_SETTINGS, ...(cl.settings ?? {}) };
    const p = `clusters[${i}].settings`;
    if (s.fenceAfterMs >= s.failAfterMs) {
      out.push(`${p}.fenceAfterMs: ${s.fenceAfterMs} must stay below failAfterMs (${s.failAfterMs}): an isolated primary must have fenced itself before a replacement is promoted, or both take writes`);
    }
    if (s.agentTimeoutMs >= s.failAfterMs) {
      out.push(`${p}.agentTimeoutMs: ${s.agentTimeoutMs} must stay below failAfterMs (${s.failAfterMs}): a silent agent must be noticed before the failover wait ends`);
    }
    if (c.leaseTtlMs >= s.failAfterMs + s.promoteTimeoutMs) {
      out.push(`leaseTtlMs: ${c.leaseTtlMs} must stay below ${p}.failAfterMs + promoteTimeoutMs (${s.failAfterMs + s.promoteTimeoutMs}): a crashed leader must be replaced before a failover it started times out`);
    }
  });
  const tokenNames = new Set<string>();
  const tokens = new Set<string>();
  if (c.adminToken) {
    tokenNames.add('admin');
    tokens.add(c.adminToken);
  }
  (c.adminTokens ?? []).forEach((t, i) => {
    if (tokenNames.has(t.name)) out.push(`adminTokens[${i}].name: ${JSON.stringify(t.name)} is used twice (names say who did what in the journal)`);
    tokenNames.add(t.name);
    if (!t.token) out.push(`adminTokens[${i}].token: required, missing (set token or tokenFile)`);
    else if (t.token.length < 16) out.push(`adminTokens[${i}].token: expected at least 16 characters, got ${t.token.length}`);
    else if (tokens.has(t.token)) out.push(`adminTokens[${i}].token: the same token as another admin token`);
    else tokens.add(t.token);
  });
  if (c.readToken && tokens.has(c.readToken)) out.push('readToken: must differ from every admin token');
  (c.webhooks ?? []).forEach((w, i) => {
    if (w.kind !== 'pagerduty' && !w.url) out.push(`webhooks[${i}].url: required for kind ${w.kind} (set url or urlFile)`);
    if (w.kind === 'pagerduty' && !w.routingKey) out.push(`webhooks[${i}].routingKey: required for kind pagerduty (set routingKey or routingKeyFile)`);
  });
  out.push(...storeChecks(c));
  return out;
}
