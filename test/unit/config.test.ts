/**
 * Configuration: YAML + environment, the seed's aliases, every error path (one line per
 * problem naming the path), the timing cross-checks, secrets from files, the generated
 * docs, redaction of every secret, and what SIGHUP may change live.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadAgentConfigFrom, loadCoordinatorConfigFrom } from '../../src/config/load.js';
import { renderConfigDoc } from '../../src/config/docs.js';
import { diffConfig } from '../../src/config/reload.js';
import { AgentConfig, CoordinatorConfig } from '../../src/config/schemas.js';
import { createLogger, redactConfig } from '../../src/log.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string, ext = 'yaml'): string {
  const p = path.join(dir, `c${++n}.${ext}`);
  fs.writeFileSync(p, text);
  return p;
}

const AGENT = 'cluster: main\nnode: pg1\nredis: redis://10.0.0.10:6379\nport: 5432\n';
const COORD = 'id: c1\nredis: redis://10.0.0.10:6379\nclusters:\n  - name: main\n';

/** The problems a config is refused with (fails the test if it is accepted). */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('the configuration was accepted');
}

describe('sources', () => {
  it('reads YAML, fills the defaults, and the environment wins over the file', () => {
    const f = file(`${AGENT}probeIntervalMs: 500\npriority: 5\n`);
    const fromFile = loadAgentConfigFrom(f, {}).config;
    expect(fromFile).toMatchObject({ cluster: 'main', node: 'pg1', probeIntervalMs: 500, priority: 5, probeTimeoutMs: 1000, fenceAfterMs: 4000, user: 'postgres' });
    const withEnv = loadAgentConfigFrom(f, { SWITCHYARD_PROBE_INTERVAL_MS: '200', SWITCHYARD_NO_FAILOVER: 'true', SWITCHYARD_PG_HOST: '10.0.0.11' }).config;
    expect(withEnv).toMatchObject({ probeIntervalMs: 200, priority: 5, noFailover: true, host: '10.0.0.11' });
  });

  it("a Redis agent logs in as Redis's `default` user unless told otherwise, not as `postgres`", () => {
    expect(loadAgentConfigFrom(file(`${AGENT}engine: redis\n`), {}).config.user).toBe('default');
    expect(loadAgentConfigFrom(undefined, { SWITCHYARD_CLUSTER: 'main', SWITCHYARD_NODE: 'r1', SWITCHYARD_ENGINE: 'redis' }).config.user).toBe('default');
    expect(loadAgentConfigFrom(file(`${AGENT}engine: redis\nuser: app\n`), {}).config.user).toBe('app');
    expect(loadAgentConfigFrom(file(AGENT), {}).config.user).toBe('postgres');
  });

  it('keeps the JSON example configs working', () => {
    const root = path.resolve(import.meta.dirname, '../..');
    expect(loadAgentConfigFrom(path.join(root, 'compose/agent.example.json'), {}).config.node).toBe('pg1');
    expect(loadCoordinatorConfigFrom(path.join(root, 'compose/coordinator.example.json'), {}).config.clusters[0]!.settings!.failAfterMs).toBe(5000);
  });

  it('runs from the environment alone', () => {
    const c = loadCoordinatorConfigFrom(undefined, { SWITCHYARD_COORDINATOR_ID: 'c2', SWITCHYARD_CLUSTER: 'a, b', SWITCHYARD_FAIL_AFTER_MS: '8000', SWITCHYARD_API_PORT: '7500' }).config;
    expect(c.clusters.map((x) => x.name)).toEqual(['a', 'b']);
    expect(c.clusters.map((x) => x.settings?.failAfterMs)).toEqual([8000, 8000]);
    expect(c.api.port).toBe(7500);
  });

  it('SWITCHYARD_CLUSTER keeps what the file says of a cluster it names', () => {
    const f = file(`${COORD}    settings:\n      cooldownMs: 1234\n`);
    const c = loadCoordinatorConfigFrom(f, { SWITCHYARD_CLUSTER: 'main,other' }).config;
    expect(c.clusters.map((x) => [x.name, x.settings?.cooldownMs])).toEqual([
      ['main', 1234],
      ['other', 10_000],
    ]);
  });
});

describe('the seed\'s variable names', () => {
  it('HEALTH_CHECK_INTERVAL_MS is the probe interval', () => {
    expect(loadAgentConfigFrom(file(AGENT), { HEALTH_CHECK_INTERVAL_MS: '400' }).config.probeIntervalMs).toBe(400);
  });

  it('FAILOVER_TIMEOUT_MS, REPLICATION_LAG_THRESHOLD_MS, DATABASE_*_HOST(S) on the coordinator', () => {
    const c = loadCoordinatorConfigFrom(file(COORD), {
      FAILOVER_TIMEOUT_MS: '9000',
      REPLICATION_LAG_THRESHOLD_MS: '1500',
      DATABASE_PRIMARY_HOST: 'db1:5432',
      DATABASE_REPLICA_HOSTS: 'db2:5432, db3',
    }).config;
    expect(c.clusters[0]!.settings!.failAfterMs).toBe(9000);
    expect(c.api.defaultMaxLagMs).toBe(1500);
    expect(c.clusters[0]!.nodes).toEqual(['db1:5432', 'db2:5432', 'db3']);
  });

  it('the MongoDB and Sentinel names are accepted and kept for their engines', () => {
    const c = loadCoordinatorConfigFrom(undefined, {
      SWITCHYARD_COORDINATOR_ID: 'c1',
      SWITCHYARD_CLUSTER: 'm',
      MONGODB_HOSTS: 'a:27017,b:27017',
      MONGODB_REPLICA_SET: 'rs0',
      REDIS_SENTINELS: 's1:26379',
      REDIS_MASTER_NAME: 'mymaster',
    }).config;
    expect(c.clusters[0]).toMatchObject({ name: 'm', mongodb: { hosts: ['a:27017', 'b:27017'], replicaSet: 'rs0' }, sentinel: { sentinels: ['s1:26379'], masterName: 'mymaster' } });
  });

  it('a SWITCHYARD_* variable wins over its alias, with a warning', () => {
    const l = loadCoordinatorConfigFrom(file(COORD), { FAILOVER_TIMEOUT_MS: '9000', SWITCHYARD_FAIL_AFTER_MS: '7000' });
    expect(l.config.clusters[0]!.settings!.failAfterMs).toBe(7000);
    expect(l.warnings).toEqual(['FAILOVER_TIMEOUT_MS is ignored: SWITCHYARD_FAIL_AFTER_MS is set too and wins']);
  });

  it('a bad alias value is named with its variable', () => {
    expect(problems(() => loadAgentConfigFrom(file(AGENT), { HEALTH_CHECK_INTERVAL_MS: 'often' }))).toEqual(['probeIntervalMs: expected integer ≥ 20, got "often" (from HEALTH_CHECK_INTERVAL_MS)']);
  });
});

describe('a bad value stops start-up, one line per problem naming the path', () => {
  it('wrong types and bounds, from the file and from the environment', () => {
    const f = file(`${COORD}leaseTtlMs: soon\napi:\n  port: 99999\n`);
    expect(problems(() => loadCoordinatorConfigFrom(f, {}))).toEqual(['api.port: expected integer ≥ 0 and ≤ 65535, got 99999', 'leaseTtlMs: expected integer ≥ 500, got "soon"']);
    expect(problems(() => loadCoordinatorConfigFrom(file(COORD), { SWITCHYARD_LEASE_TTL_MS: 'soon' }))).toEqual(['leaseTtlMs: expected integer ≥ 500, got "soon" (from SWITCHYARD_LEASE_TTL_MS)']);
  });

  it('nested paths with list indexes, and unions listing their choices', () => {
    const f = file(`${COORD}    settings:\n      failAfterMs: -1\n      policy: sometimes\n`);
    expect(problems(() => loadCoordinatorConfigFrom(f, {}))).toEqual([
      'clusters[0].settings.failAfterMs: expected integer ≥ 0, got -1',
      'clusters[0].settings.policy: expected one of "failover", "restart-first", got "sometimes"',
    ]);
  });

  it('agent zone: a short label from the file or SWITCHYARD_ZONE; anything else is refused naming the field', () => {
    expect(loadAgentConfigFrom(file(AGENT), {}).config.zone).toBeUndefined();
    expect(loadAgentConfigFrom(file(`${AGENT}zone: eu-west-1a\n`), {}).config.zone).toBe('eu-west-1a');
    expect(loadAgentConfigFrom(file(`${AGENT}zone: eu-west-1a\n`), { SWITCHYARD_ZONE: 'rack_7.dc-2' }).config.zone).toBe('rack_7.dc-2');
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}zone: eu west\n`), {}))).toEqual(['zone: expected a name of 1-64 letters, digits, _ . -, got "eu west"']);
    expect(problems(() => loadAgentConfigFrom(file(AGENT), { SWITCHYARD_ZONE: 'z'.repeat(65) }))).toEqual([expect.stringMatching(/^zone: expected a name of 1-64 letters, digits, _ \. -, got "z+\.\.\. \(from SWITCHYARD_ZONE\)$/)]);
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}zone: ""\n`), {}))).toEqual(['zone: expected a name of 1-64 letters, digits, _ . -, got ""']);
    // not a coordinator setting: a typo'd key there is an unknown setting
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}zone: a\n`), {}))).toEqual(['zone: unknown setting']);
  });

  it('missing required fields say where to set them', () => {
    expect(problems(() => loadAgentConfigFrom(file('cluster: main\n'), {}))).toEqual(['node: required, missing (set it in the file or SWITCHYARD_NODE)']);
  });

  it('unknown keys: did you mean…', () => {
    const f = file(`${AGENT}probeIntervalMS: 100\nfenceAfter: 100\nwhatever: 1\n`);
    expect(problems(() => loadAgentConfigFrom(f, {}))).toEqual(['probeIntervalMS: unknown setting; did you mean probeIntervalMs?', 'fenceAfter: unknown setting; did you mean fenceAfterMs?', 'whatever: unknown setting']);
    const g = file(`${COORD}    setings: {}\napi:\n  prot: 1\n`);
    expect(problems(() => loadCoordinatorConfigFrom(g, {}))).toEqual(['clusters[0].setings: unknown setting; did you mean clusters[0].settings?', 'api.prot: unknown setting; did you mean api.port?']);
  });

  it('a file that is not YAML, not a mapping, or not there', () => {
    expect(problems(() => loadAgentConfigFrom(file('cluster: [main\n'), {}))[0]).toMatch(/c\d+\.yaml:\d+:\d+ /);
    expect(problems(() => loadAgentConfigFrom(file('- a\n- b\n'), {}))).toEqual([expect.stringContaining('expected a mapping of settings at the top, got a list')]);
    expect(problems(() => loadAgentConfigFrom(path.join(dir, 'nope.yaml'), {}))).toEqual([expect.stringContaining('cannot read config file') as unknown]);
  });

  it('the CLI prints the lines without a stack and exits 2', () => {
    // the built CLI (npm test builds first)
    const built = path.resolve(import.meta.dirname, '../../dist/src/cli/main.js');
    expect(fs.existsSync(built), 'run npm run build first').toBe(true);
    const f = file(`${COORD}leaseTtlMs: soon\nleaseTtl: 3\n`);
    const r = spawnSync(process.execPath, [built, 'check', '--config', f], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`switchyard: invalid configuration (${f}):\n  leaseTtl: unknown setting; did you mean leaseTtlMs?\n  leaseTtlMs: expected integer ≥ 500, got "soon"\n`);
    const ok = spawnSync(process.execPath, [built, 'check', '--config', file(COORD)], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('a valid coordinator configuration');
  });
});

describe('timing settings are checked against each other, with the reason', () => {
  it('lease TTL against renew interval plus a retried renewal (Patroni: loop_wait + 2×retry_timeout ≤ ttl)', () => {
    const p = problems(() => loadCoordinatorConfigFrom(file(`${COORD}leaseTtlMs: 2000\n`), {}));
    expect(p).toEqual([expect.stringMatching(/^leaseTtlMs: 2000 is too short: .*leaseRenewMs 666 \+ 2 × redisTimeoutMs 1000 = 2666.*loop_wait \+ 2×retry_timeout ≤ ttl/)]);
    // the same TTL with faster Redis calls is fine
    expect(loadCoordinatorConfigFrom(file(`${COORD}leaseTtlMs: 2000\nredisTimeoutMs: 500\n`), {}).config.leaseTtlMs).toBe(2000);
  });

  it('fenceAfterMs below the failover wait', () => {
    const p = problems(() => loadCoordinatorConfigFrom(file(`${COORD}    settings: { failAfterMs: 3500 }\n`), {}));
    expect(p).toEqual([expect.stringMatching(/^clusters\[0\]\.settings\.fenceAfterMs: 4000 must stay below failAfterMs \(3500\): an isolated primary must have fenced itself/)]);
  });

  it('agent timeout below the failover wait; tick below the lease; lease below failover + promotion', () => {
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}    settings: { agentTimeoutMs: 6000 }\n`), {}))).toEqual([expect.stringMatching(/^clusters\[0\]\.settings\.agentTimeoutMs: 6000 must stay below failAfterMs/)]);
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}tickMs: 5000\n`), {}))).toEqual([expect.stringMatching(/^tickMs: 5000 must be below leaseTtlMs/)]);
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}leaseTtlMs: 30000\n`), {}))).toEqual([expect.stringMatching(/^leaseTtlMs: 30000 must stay below clusters\[0\]\.settings\.failAfterMs \+ promoteTimeoutMs/)]);
  });

  it('the agent probes at least once per fencing window', () => {
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}probeIntervalMs: 3000\nprobeTimeoutMs: 1500\n`), {}))).toEqual([expect.stringMatching(/^fenceAfterMs: 4000 must exceed probeIntervalMs \+ probeTimeoutMs \(3000 \+ 1500 = 4500\)/)]);
  });

  it('TLS and token consistency', () => {
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}sslmode: verify-full\n`), {}))).toEqual([expect.stringMatching(/^sslrootcert: required with sslmode verify-full/)]);
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}redisTls: { caFile: /x }\n`), {}))).toEqual([expect.stringMatching(/^redis: redisTls is set but the URL is .*use rediss:\/\//)]);
    const t = 'a-token-of-enough-length';
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}adminTokens:\n  - { name: alice, token: ${t} }\n  - { name: alice, token: ${t}x }\nreadToken: ${t}\n`), {}))).toEqual([
      'adminTokens[1].name: "alice" is used twice (names say who did what in the journal)',
      'readToken: must differ from every admin token',
    ]);
  });
});

describe('every other consistency check, one line each', () => {
  const t = 'a-token-of-enough-length';
  it('agent: certificates without their key, TLS files with TLS off', () => {
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}sslmode: require\nsslcert: /c.pem\n`), {}))).toEqual(['sslkey: a client certificate needs both sslcert and sslkey']);
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}sslmode: require\nsslkey: /k.pem\n`), {}))).toEqual(['sslcert: a client certificate needs both sslcert and sslkey']);
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}sslrootcert: /ca.pem\n`), {}))).toEqual(['sslmode: "disable" ignores sslrootcert/sslcert; set sslmode to require, verify-ca or verify-full']);
    expect(problems(() => loadAgentConfigFrom(file(`redis: rediss://h:6380\nredisTls: { certFile: /c.pem }\n${AGENT.replace(/^redis:.*\n/m, '')}`), {}))).toEqual(['redisTls.keyFile: a client certificate needs both certFile and keyFile']);
  });

  it('coordinator: a cluster twice, admin tokens missing or repeated, webhooks without a destination', () => {
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}  - name: main\n`), {}))).toEqual(['clusters[1].name: "main" is listed twice']);
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}adminTokens:\n  - { name: alice }\n`), {}))).toEqual(['adminTokens[0].token: required, missing (set token or tokenFile)']);
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}adminToken: ${t}\nadminTokens:\n  - { name: bob, token: ${t} }\n`), {}))).toEqual(['adminTokens[0].token: the same token as another admin token']);
    expect(problems(() => loadCoordinatorConfigFrom(file(`${COORD}webhooks:\n  - { name: s, kind: slack }\n  - { name: p, kind: pagerduty }\n`), {}))).toEqual([
      'webhooks[0].url: required for kind slack (set url or urlFile)',
      'webhooks[1].routingKey: required for kind pagerduty (set routingKey or routingKeyFile)',
    ]);
  });

  it('an empty secret file', () => {
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '\n');
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}passwordFile: ${empty}\n`), {}))).toEqual([`passwordFile: ${empty} is empty`]);
  });
});

describe('secrets', () => {
  it('come from files, never both a value and a file', () => {
    const pw = path.join(dir, 'pw');
    fs.writeFileSync(pw, 's3cret-from-file\n');
    expect(loadAgentConfigFrom(file(`${AGENT}passwordFile: ${pw}\n`), {}).config.password).toBe('s3cret-from-file');
    const tok = path.join(dir, 'tok');
    fs.writeFileSync(tok, 'alice-token-0123456789\n');
    expect(loadCoordinatorConfigFrom(file(`${COORD}adminTokens:\n  - { name: alice, tokenFile: ${tok} }\n`), {}).config.adminTokens![0]!.token).toBe('alice-token-0123456789');
    expect(loadAgentConfigFrom(file(AGENT), { SWITCHYARD_PG_PASSWORD_FILE: pw }).config.password).toBe('s3cret-from-file');
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}password: x\npasswordFile: ${pw}\n`), {}))).toEqual(['passwordFile: set password or passwordFile, not both']);
    expect(problems(() => loadAgentConfigFrom(file(`${AGENT}passwordFile: ${path.join(dir, 'missing')}\n`), {}))).toEqual([`passwordFile: cannot read ${path.join(dir, 'missing')}: ENOENT`]);
  });

  it('a refused secret is named by its path, its value never printed', () => {
    const tok = path.join(dir, 'short-tok');
    fs.writeFileSync(tok, 'short-sec-1\n');
    const p = problems(() =>
      loadCoordinatorConfigFrom(file(`${COORD}adminTokens:\n  - { name: alice, tokenFile: ${tok} }\nreadToken: short-sec-2\nwebhooks:\n  - { name: s, kind: slack, url: "hooks.example/short-sec-3" }\n`), {}),
    );
    expect(p).toEqual([
      'adminTokens[0].token: expected a string of at least 16 characters, got [redacted]',
      'readToken: expected a string of at least 16 characters, got [redacted]',
      'webhooks[0].url: expected a string matching ^https?://, got [redacted]',
    ]);
    // a password inside a URL too
    expect(problems(() => loadAgentConfigFrom(file(AGENT), { SWITCHYARD_REDIS: 'http://sy:url-sec-4@h:6379' }))).toEqual(['redis: expected a string matching ^rediss?://, got "http://sy:[redacted]@h:6379" (from SWITCHYARD_REDIS)']);
  });

  it('a password in the Redis URL is warned about', () => {
    expect(loadAgentConfigFrom(file(AGENT.replace('redis://', 'redis://u:p@')), {}).warnings).toEqual([expect.stringContaining('the URL carries a password')]);
  });

  it('are never logged: a config full of secrets logs none of them', () => {
    const secrets = ['pg-pass-111', 'redis-pass-222', 'admin-legacy-333', 'alice-tok-444444444', 'read-tok-555555555', 'https://hooks.slack.com/services/T0/B0/xyz666', 'pd-routing-777', 'url-pass-888', 'bearer-999'];
    const cfg = loadCoordinatorConfigFrom(
      file(`${COORD}redisPassword: ${secrets[1]}\nadminToken: ${secrets[2]}-padding\nadminTokens:\n  - { name: alice, token: ${secrets[3]} }\nreadToken: ${secrets[4]}\nwebhooks:\n  - { name: slack, kind: slack, url: "${secrets[5]}" }\n  - { name: pd, kind: pagerduty, routingKey: ${secrets[6]} }\n`),
      {},
    ).config;
    const agent = loadAgentConfigFrom(file(`${AGENT}password: ${secrets[0]}\n`), {}).config;
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = createLogger('t', 'info', sink);
    log.info(cfg, 'config at the top');
    log.info({ config: cfg }, 'config one level down');
    log.info({ agent }, 'agent config');
    log.info(agent, 'agent config at the top');
    log.info({ deep: { config: cfg } }, 'two levels down');
    log.info({ redis: `redis://sy:${secrets[7]}@h:6379`, req: { headers: { authorization: `Bearer ${secrets[8]}` } } }, 'url and header');
    log.info({ config: redactConfig(cfg), agent: redactConfig(agent) }, 'redactConfig');
    for (const s of secrets) expect(out, `secret ${s} in the log`).not.toContain(s);
    expect(out).toContain('[redacted]');
    expect(out).toContain('redis://sy:[redacted]@h:6379');
    expect(out).toContain('"node":"pg1"'); // the rest is still there
  });
});

describe('docs/configuration.md', () => {
  it('is generated from the schemas (run `npm run docs` after changing them)', () => {
    const doc = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
    expect(doc).toBe(renderConfigDoc());
  });

  it('every field has a description, and a default or says it is required', () => {
    const missing: string[] = [];
    const walk = (s: unknown, at: string): void => {
      const x = s as { properties?: Record<string, unknown>; items?: unknown; type?: string };
      for (const [k, sub] of Object.entries(x.properties ?? {})) {
        const y = sub as { description?: string; default?: unknown; type?: string; items?: unknown };
        if (!y.description || (y.default === undefined && !/required|default/.test(y.description))) missing.push(`${at}${k}`);
        walk(sub, `${at}${k}.`);
        if (y.type === 'array') walk(y.items, `${at}${k}[].`);
      }
    };
    walk(AgentConfig, 'agent.');
    walk(CoordinatorConfig, 'coordinator.');
    expect(missing).toEqual([]);
  });
});

describe('SIGHUP', () => {
  it('tells the live settings from those that need a restart', () => {
    const a = loadCoordinatorConfigFrom(file(COORD), {}).config;
    const b = loadCoordinatorConfigFrom(file(`${COORD}    settings: { failAfterMs: 6000 }\nlogLevel: debug\nleaseTtlMs: 4000\napi: { port: 7500 }\n`), {}).config;
    expect(diffConfig(CoordinatorConfig, a, b)).toEqual({ live: ['clusters[0].settings.failAfterMs', 'logLevel'], restart: ['api.port', 'leaseTtlMs'] });
    const x = loadAgentConfigFrom(file(AGENT), {}).config;
    const y = loadAgentConfigFrom(file(`${AGENT}probeIntervalMs: 300\nhost: 10.0.0.12\n`), {}).config;
    expect(diffConfig(AgentConfig, x, y)).toEqual({ live: ["probeIntervalMs"], restart: ["host"] });
  });
});
