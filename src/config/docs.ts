/**
 * docs/configuration.md, generated from the daemons' schemas and the alias table
 * (`npm run docs`); test/unit/config.test.ts fails when the file and this differ.
 */
import type { TSchema } from '@sinclair/typebox';
import { ALIASES } from './aliases.js';
import { expectation } from './load.js';
import { AgentConfig, CoordinatorConfig } from './schemas.js';

interface Row {
  path: string;
  type: string;
  dflt: string;
  env: string;
  description: string;
}

function rows(schema: TSchema, prefix = '', out: Row[] = []): Row[] {
  const s = schema as TSchema & { properties?: Record<string, TSchema>; required?: string[] };
  for (const [k, sub] of Object.entries(s.properties ?? {})) {
    const x = sub as TSchema & { properties?: Record<string, TSchema>; items?: TSchema; default?: unknown; env?: string; description?: string; live?: boolean };
    const path = prefix ? `${prefix}.${k}` : k;
    const required = s.required?.includes(k) && x.default === undefined;
    const isObject = x.type === 'object' && x.properties;
    const isObjectList = x.type === 'array' && (x.items as { type?: string } | undefined)?.type === 'object';
    out.push({
      path,
      type: isObject ? 'mapping' : isObjectList ? 'list of mappings' : expectation(x),
      dflt: required ? '**required**' : x.default !== undefined ? `\`${JSON.stringify(x.default)}\`` : '',
      env: x.env ? `\`${x.env}\`` : '',
      description: `${(x.description ?? '').replace(/\|/g, '\\|')}${x.live ? ' *(SIGHUP reloads it)*' : ''}`,
    });
    if (isObject) rows(x, path, out);
    if (isObjectList) rows(x.items!, `${path}[]`, out);
  }
  return out;
}

function table(schema: TSchema): string {
  const lines = ['| setting | type | default | environment | description |', '|---|---|---|---|---|'];
  for (const r of rows(schema)) lines.push(`| \`${r.path}\` | ${r.type.replace(/\|/g, '\\|')} | ${r.dflt} | ${r.env} | ${r.description} |`);
  return lines.join('\n');
}

export function renderConfigDoc(): string {
  const aliasRows = ALIASES.map((a) => `| \`${a.alias}\` | ${a.daemons.join(', ')} | \`${a.sets}\` | ${a.target ? `\`${a.target}\`` : ''} | ${a.meaningful ? 'yes' : 'accepted, for a later engine'} | ${a.note} |`);
  return `<!-- generated from src/config/schemas.ts and src/config/aliases.ts by \`npm run docs\`; edit those, not this file -->
# Configuration

\`switchyard agent\` and \`switchyard coordinator\` read a YAML file given by \`--config\` (JSON is
YAML too, so JSON files work unchanged) and environment variables; **the environment wins over
the file**. Then the defaults below apply, secrets are read from their \`…File\` settings, every
field is validated, and the timing settings are checked against each other.

\`\`\`sh
switchyard check --config /etc/switchyard/agent.yaml            # validate
switchyard check --config /etc/switchyard/agent.yaml --connect  # and check the node and Redis are ready for HA
\`\`\`

A bad configuration stops start-up with exit code 2 and one line per problem, naming the path:

\`\`\`
switchyard: invalid configuration (coordinator.yaml):
  leaseTtl: unknown setting; did you mean leaseTtlMs?
  leaseTtlMs: expected integer ≥ 500, got "soon" (from SWITCHYARD_LEASE_TTL_MS)
\`\`\`

Secrets (passwords, tokens, webhook URLs) come from files (\`passwordFile\`, \`tokenFile\`, …) or
the environment, never from the command line, and are redacted from every log line.
Settings marked *SIGHUP reloads it* change on \`kill -HUP\`; the log lists which settings changed
and which of them need a restart.

## Timing rules checked at start-up

- coordinator: \`leaseRenewMs + 2 × redisTimeoutMs ≤ leaseTtlMs\` (as Patroni's
  \`loop_wait + 2×retry_timeout ≤ ttl\`): a renewal retried once must fit in the lease.
- coordinator: \`tickMs < leaseTtlMs\`; \`leaseTtlMs < failAfterMs + promoteTimeoutMs\`.
- each cluster: \`settings.fenceAfterMs < settings.failAfterMs\` (an isolated primary has fenced
  itself before its replacement is promoted); \`agentTimeoutMs < failAfterMs\`.
- agent: \`probeIntervalMs + probeTimeoutMs < fenceAfterMs\` (the probe loop, which fences, runs
  at least once per fencing window).
- agent \`fenceAfterMs\` must equal the coordinators' \`settings.fenceAfterMs\` (they run apart:
  \`switchyard check\` cannot compare them; keep them in one place in your deployment tool).

## The seed's variable names

| variable | daemon | sets | same as | meaningful now | meaning |
|---|---|---|---|---|---|
${aliasRows.join('\n')}

A \`SWITCHYARD_*\` variable set as well wins over its alias (a warning says so).

## Agent

${table(AgentConfig)}

### Zones

Give each agent the zone its node runs in (\`zone: eu-west-1a\` in its file, or
\`SWITCHYARD_ZONE=eu-west-1a\`). The agent reports it with every probe, the leader journals it
with the node's registration (a changed zone, after a restart of the agent, is registered again),
and the routing table carries it as \`zone\` on the primary, on each replica and in the node list;
\`switchyard ctl list\` and the dashboard show it. A node whose agent has none has no \`zone\`
field: a cluster without zones keeps the table it had. Clients use it with their own \`zone\`
option (docs/client.md): \`readPreference: 'nearest'\` reads from a node in the same zone first,
and every other preference breaks its ties the same way. The coordinator needs no setting.

## Coordinator

Environment variables of \`clusters[].settings\` and \`clusters[].engine\` apply to every cluster.

${table(CoordinatorConfig)}
`;
}
