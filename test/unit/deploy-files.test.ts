/**
 * The deployment files: every compose file passes `docker-compose config` (skipped, with a
 * message, when docker-compose is not installed; .ci/run installs it), every example config
 * passes the daemons' loader, compose/haproxy.cfg is what the renderer makes and HAProxy
 * accepts it, the Kubernetes example is valid YAML, and the systemd units pass on every
 * credential they load.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, load } from '../../src/config/load.js';
import { composeHaproxyConfig } from '../../src/config/haproxy.js';

const root = path.resolve(import.meta.dirname, '../..');
const which = (bin: string): string | null => spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim() || null;
const compose = which('docker-compose');
const haproxy = which('haproxy') ?? (fs.existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : null);
if (!compose) console.warn('SKIPPED docker-compose config checks: docker-compose is not installed (apt-get install -y docker-compose, or run .ci/run)');
if (!haproxy) console.warn('SKIPPED haproxy -c check: haproxy is not installed (apt-get install -y haproxy, or run .ci/run)');

const composeFiles = fs.readdirSync(path.join(root, 'compose')).filter((f) => f.endsWith('.yml'));

describe('compose files', () => {
  it('there is one for each engine', () => {
    expect(composeFiles.sort()).toEqual(['mongodb.yml', 'postgres.yml', 'redis.yml']);
  });

  it.skipIf(!compose).each(composeFiles)('%s passes docker-compose config', (f) => {
    const r = spawnSync(compose!, ['-f', path.join(root, 'compose', f), 'config', '-q'], { encoding: 'utf8', cwd: path.join(root, 'compose') });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('example configs', () => {
  /** Load as the daemon would, with the per-service environment; secret files live only in the containers. */
  function problemsOf(kind: 'agent' | 'coordinator', file: string, env: Record<string, string>): string[] {
    try {
      load(kind, path.join(root, file), env);
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.filter((p) => !/: cannot read \/run\/secrets\//.test(p));
    }
  }

  it('the PostgreSQL agent and every coordinator config load', () => {
    expect(problemsOf('agent', 'compose/postgres/agent.yaml', { SWITCHYARD_NODE: 'pg1', SWITCHYARD_PG_HOST: 'pg1' })).toEqual([]);
    for (const e of ['postgres', 'redis', 'mongodb']) expect(problemsOf('coordinator', `compose/${e}/coordinator.yaml`, { SWITCHYARD_COORDINATOR_ID: 'c1' }), e).toEqual([]);
    expect(problemsOf('agent', 'compose/agent.example.json', {})).toEqual([]);
    expect(problemsOf('coordinator', 'compose/coordinator.example.json', {})).toEqual([]);
  });

  it('the Redis and MongoDB agent configs are valid', () => {
    expect(problemsOf('agent', 'compose/redis/agent.yaml', { SWITCHYARD_NODE: 'n1', SWITCHYARD_PG_HOST: 'n1' })).toEqual([]);
    expect(problemsOf('agent', 'compose/mongodb/agent.yaml', { SWITCHYARD_NODE: 'n1', SWITCHYARD_PG_HOST: 'n1' })).toEqual([]);
  });
});

describe('HAProxy and Kubernetes files', () => {
  it('compose/haproxy.cfg is the renderer\'s (npm run docs writes it)', () => {
    expect(fs.readFileSync(path.join(root, 'compose/haproxy.cfg'), 'utf8')).toBe(composeHaproxyConfig());
  });

  it.skipIf(!haproxy)('HAProxy accepts compose/haproxy.cfg', () => {
    const r = spawnSync(haproxy!, ['-c', '-f', path.join(root, 'compose/haproxy.cfg')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('the Kubernetes example is valid YAML with the agent as a sidecar', () => {
    const docs = parseAllDocuments(fs.readFileSync(path.join(root, 'deploy/kubernetes/postgres-with-agent.yaml'), 'utf8'));
    expect(docs.flatMap((d) => d.errors)).toEqual([]);
    const sts = docs.map((d) => d.toJS() as { kind: string; spec?: { template?: { spec?: { containers?: Array<{ name: string }> } } } }).find((d) => d.kind === 'StatefulSet');
    expect(sts?.spec?.template?.spec?.containers?.map((c) => c.name)).toEqual(['postgres', 'switchyard-agent']);
  });
});

describe('the Kubernetes example configures both daemons validly', () => {
  type Doc = { kind: string; data?: Record<string, string>; spec?: { template?: { spec?: { containers?: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } } } };
  const docs = (): Doc[] => parseAllDocuments(fs.readFileSync(path.join(root, 'deploy/kubernetes/postgres-with-agent.yaml'), 'utf8')).map((d) => d.toJS() as Doc);
  /** the problems left once the secret files (mounted only in the pod) are set aside */
  function problems(fn: () => unknown): string[] {
    try {
      fn();
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.filter((p) => !/: cannot read \/run\/secrets\//.test(p));
    }
  }

  it('the agent: the ConfigMap plus the sidecar\'s per-pod variables', () => {
    const text = docs().find((d) => d.kind === 'ConfigMap')!.data!['agent.yaml']!;
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sy-k8s-')), 'agent.yaml');
    fs.writeFileSync(f, text);
    expect(problems(() => load('agent', f, { SWITCHYARD_NODE: 'pg-0', SWITCHYARD_PG_HOST: 'pg-0.pg.default.svc' }))).toEqual([]);
    fs.rmSync(path.dirname(f), { recursive: true, force: true });
  });

  it('the coordinator: from its environment alone', () => {
    const c = docs().find((d) => d.kind === 'Deployment')!.spec!.template!.spec!.containers!.find((x) => x.name === 'coordinator')!;
    const env: Record<string, string> = { SWITCHYARD_COORDINATOR_ID: 'switchyard-coordinator-5d8f7c9b4-x2k7q' };
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    expect(problems(() => load('coordinator', undefined, env))).toEqual([]);
  });
});

describe('systemd units', () => {
  it('every credential a unit loads reaches the daemon through a *_FILE variable', () => {
    for (const unit of fs.readdirSync(path.join(root, 'deploy/systemd'))) {
      const text = fs.readFileSync(path.join(root, 'deploy/systemd', unit), 'utf8');
      const loaded = [...text.matchAll(/^LoadCredential=([^:]+):/gm)].map((m) => m[1]!);
      const used = [...text.matchAll(/^Environment=SWITCHYARD_\w+_FILE=%d\/(\S+)$/gm)].map((m) => m[1]!);
      expect(used.sort(), unit).toEqual(loaded.sort());
    }
  });
});

describe('Dockerfile', () => {
  it('builds with the package build script, which ships the Lua scripts the coordinator loads at start', () => {
    const docker = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const build = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.build!;
    expect(build).toContain("cpSync('src/bus/lua', 'dist/src/bus/lua'");
    expect(docker).toMatch(/^RUN npm run build\b/m);
    // every directory the build compiles is copied into the build stage
    for (const dir of ['src', 'agent', 'coordinator', 'scripts', 'bench']) expect(docker).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
  });
});
