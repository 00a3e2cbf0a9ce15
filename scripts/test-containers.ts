// `npm run test:containers`: the MongoDB (and PostgreSQL, Redis) scenarios against real
// servers in containers, through testcontainers, where a Docker engine is reachable.
// Without one it prints exactly one line, "skipped: no Docker engine", and exits 0.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request, type RequestOptions } from 'node:http';

function ping(opts: RequestOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...opts, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function dockerReachable(): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  if (host) {
    if (host.startsWith('unix://')) return ping({ socketPath: host.slice('unix://'.length) });
    const u = new URL(host.replace(/^tcp:/, 'http:'));
    return ping({ host: u.hostname, port: Number(u.port || 2375) });
  }
  for (const p of ['/var/run/docker.sock', `${process.env.HOME ?? ''}/.docker/run/docker.sock`, `/run/user/${String(process.getuid?.() ?? 0)}/docker.sock`]) {
    if (existsSync(p) && (await ping({ socketPath: p }))) return true;
  }
  return false;
}

if (!(await dockerReachable())) {
  console.log('skipped: no Docker engine');
  process.exit(0);
}
const r = spawnSync('npx', ['vitest', 'run', '--config', 'test/containers/vitest.config.ts'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
