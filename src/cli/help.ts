/**
 * Every help text of the CLI, keyed by command path ('' for the top level, 'sandbox up',
 * 'ctl switchover', …). `switchyard <path> --help` prints it; test/integration/cli-help
 * runs --help for every key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SANDBOX_ENGINES } from '../sandbox/deploy.js';

const ENGINES = SANDBOX_ENGINES.join('|');

const CTL_COMMON = `common options:
  --api URL        the API of any coordinator (or SWITCHYARD_API; default: the sandbox in --dir)
  --cluster NAME   the cluster (or SWITCHYARD_CLUSTER; default: the sandbox's)
  --dir D          the sandbox to talk to when --api is not given (default .switchyard/sandbox)
  --token T        admin token for switchover, failover, pause, resume (or SWITCHYARD_ADMIN_TOKEN;
                   the sandbox's own token is used only for the sandbox's own API)
  --json           print the API's raw JSON instead of text
  -h, --help       this help`;

export const HELP: Readonly<Record<string, string>> = {
  '': `usage: switchyard <command> [options]

Keeps replicated databases available: an agent per database host, leader-elected
coordinators that decide failovers, and a routing API that tells apps where to connect.

commands:
  sandbox up|down|status   a whole deployment on loopback, for demos and for breaking things
  agent                    the sidecar daemon, one per database host
  coordinator              the coordinator daemon: decides, serves the API and the dashboard
  check                    validate a daemon's config; with --connect, is the node ready for HA?
  ctl <command>            the operator's tool: list, events, history, explain, switchover,
                           failover, pause, resume

options:
  -h, --help      help; \`switchyard <command> --help\` for a command's own
  -V, --version   print the version

After \`npm ci\` in a checkout, run it as \`npx switchyard …\`.`,

  sandbox: `usage: switchyard sandbox <up|down|status> [options]

  up       start Redis, a primary, replicas, an agent per node and coordinators on loopback
  down     stop a sandbox and remove what it created
  status   the sandbox's processes and each node's role

\`switchyard sandbox <command> --help\` for the options.`,

  'sandbox up': `usage: switchyard sandbox up [options]

Start a whole deployment on loopback: one Redis, one primary and N replicas, one agent
per node (managing its node's process), N coordinators serving the API. Writes
<dir>/sandbox.json (every pid and port, the API URL and the admin token).

In the foreground until Ctrl-C; Ctrl-C stops everything AND REMOVES the sandbox's data
(unless --keep). With --detach it returns once the primary and every replica are healthy.

options:
  --engine E          ${ENGINES} (default postgres)
  --replicas N        replicas besides the primary, 0 to 8 (default 2)
  --sync              synchronous replication: no acknowledged commit lost to a failover
  --coordinators N    1 to 5 (default 2)
  --api-port P        the first coordinator's API port, 1-65535; coordinator i uses P+i-1 (default 7400)
  --dir D             the sandbox's directory, new or empty (default .switchyard/sandbox)
  --cluster NAME      the cluster's name (default sandbox)
  --settings JSON     failover settings for the coordinators, e.g. '{"failAfterMs":2000}'
  --detach            run in the background; stop it with \`switchyard sandbox down\`
  --keep              Ctrl-C stops the processes and keeps the data
  -h, --help          this help`,

  'sandbox down': `usage: switchyard sandbox down [--dir D] [--keep]

Stop every process of the sandbox in D and remove what the sandbox created there.
Only a directory that \`sandbox up\` created is touched: anything else is refused.

options:
  --dir D     the sandbox's directory (default .switchyard/sandbox)
  --keep      stop the processes, keep the data
  -h, --help  this help`,

  'sandbox status': `usage: switchyard sandbox status [--dir D] [--json]

The sandbox's processes (alive or not) and each node's role as the routing table shows it.

options:
  --dir D     the sandbox's directory (default .switchyard/sandbox)
  --json      sandbox.json and the routing table, as JSON
  -h, --help  this help`,

  agent: `usage: switchyard agent [--config FILE]

The sidecar daemon, one per database host: probes its node, publishes observations to
Redis, runs the coordinator's jobs (promote, follow, rejoin, …), fences a primary that
lost Redis. Given a dataDir it also manages the node's process.

Config from FILE (YAML or JSON; see compose/agent.example.json), or from SWITCHYARD_*
variables, which win over the file:
SWITCHYARD_CLUSTER, SWITCHYARD_NODE, SWITCHYARD_REDIS, SWITCHYARD_PG_HOST, SWITCHYARD_PG_PORT,
SWITCHYARD_DATA_DIR, SWITCHYARD_PG_USER, … (README: "Running the daemons").

options:
  --config FILE  the agent's config
  -h, --help     this help`,

  coordinator: `usage: switchyard coordinator [--config FILE] [--sentinel-port P]

The coordinator daemon: follows the clusters' streams, holds a lease per cluster while
it leads, decides failovers, serves the routing API, /metrics, /docs and the dashboard at /.

Config from FILE (YAML or JSON; see compose/coordinator.example.json), or from SWITCHYARD_*
variables, which win over the file: SWITCHYARD_COORDINATOR_ID, SWITCHYARD_REDIS,
SWITCHYARD_CLUSTER (comma list), SWITCHYARD_API_HOST, SWITCHYARD_API_PORT,
SWITCHYARD_ADMIN_TOKEN, …

options:
  --config FILE        the coordinator's config
  --sentinel-port P    also serve the Redis Sentinel protocol on port P for its Redis cluster
                       (or SWITCHYARD_SENTINEL_PORT; docs/redis.md)
  -h, --help           this help`,

  check: `usage: switchyard check --config FILE [--connect] [--daemon agent|coordinator]

Validate a daemon's config file (and the SWITCHYARD_* variables that override it): every
problem on its own line, naming the setting, with "did you mean" for a misspelled key.
With --connect, also check that the coordination Redis and the node are ready for HA, and
print what to change.

Exit code: 0 valid (and ready), 1 something to change, 2 invalid configuration.

options:
  --config FILE                the config to check (required)
  --connect                    also connect to Redis and the node
  --daemon agent|coordinator   whose config it is (default: guessed from its keys)
  -h, --help                   this help`,

  ctl: `usage: switchyard ctl <command> [options]

The operator's tool, a client of the HTTP API.

commands:
  list                     every node with its role, phase, lag and reason; the cluster's phase
  events                   the journal: every fact and decision, with its reason
  history                  failovers and switchovers
  explain <operation>      one failover or switchover: why, which candidate and why, the steps
  switchover [--to NODE]   planned switchover to NODE (or the best candidate)
  failover --to NODE       manual failover, when the primary is down
  pause                    pause automatic failover
  resume                   resume automatic failover

${CTL_COMMON}

\`switchyard ctl <command> --help\` for a command's own options.`,

  'ctl list': `usage: switchyard ctl list [options]

The cluster's phase (healthy, degraded, primary-down, failing-over, switching-over), PAUSED
when automatic failover is paused, why a failover is blocked, and every registered node,
down ones included: role, phase, address, lag (replicas) and the reason for its phase.

${CTL_COMMON}`,

  'ctl events': `usage: switchyard ctl events [--limit N] [--type TYPE] [--after ID|TIME] [--follow] [options]

The journal: nodes registered, health changes, failovers with their evidence, blocked
failovers, pauses, commands refused.

options:
  --limit N         print at most N events
  --type TYPE       only this type (node.health-changed, failover.started, failover.blocked, …)
  --after ID|TIME   only after this stream id (1795669845922-0) or time (ISO 8601)
  --follow          keep printing new events as they come (Ctrl-C to stop)

${CTL_COMMON}`,

  'ctl history': `usage: switchyard ctl history [options]

Failovers and switchovers: id, kind, from, to, when, how long, what was lost, outcome.
\`ctl explain <id>\` tells one of them in full.

${CTL_COMMON}`,

  'ctl explain': `usage: switchyard ctl explain <operation> [options]

One failover or switchover: what was decided and why, why this candidate over the
others, and each step with its time.

${CTL_COMMON}`,

  'ctl switchover': `usage: switchyard ctl switchover [--to NODE] [--yes] [--no-wait] [options]

A planned switchover: the primary stops cleanly, NODE (or the best candidate) is promoted
once it has every WAL record, the old primary follows it. Asks for confirmation unless
--yes, then waits for the outcome and prints it.

options:
  --to NODE     the new primary (default: the best candidate)
  --yes, -y     do not ask for confirmation
  --no-wait     print the operation id and return without waiting for the outcome

${CTL_COMMON}`,

  'ctl failover': `usage: switchyard ctl failover --to NODE [--yes] [--no-wait] [options]

A manual failover, when the primary is down and automatic failover did not (or may not:
paused) promote anyone. Asks for confirmation unless --yes, then waits for the outcome.
While the primary is healthy, use switchover.

options:
  --to NODE     the node to promote (required)
  --yes, -y     do not ask for confirmation
  --no-wait     print the operation id and return without waiting for the outcome

${CTL_COMMON}`,

  'ctl pause': `usage: switchyard ctl pause [options]

Pause automatic failover: health is still journaled, a failover the pause blocks is
journaled (failover.blocked), operators can still switch over and fail over by hand.

${CTL_COMMON}`,

  'ctl resume': `usage: switchyard ctl resume [options]

Resume automatic failover.

${CTL_COMMON}`,
};

/** The package's version, from its package.json (sources or dist/). */
export function version(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p)) {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'switchyard' && pkg.version) return pkg.version;
    }
    dir = path.dirname(dir);
  }
  return 'unknown';
}

/**
 * How the user runs the CLI, for the commands it suggests: `npx switchyard` when run by
 * `npx switchyard …` or `npm start` in a checkout (where `switchyard` is not on the PATH),
 * else `switchyard`.
 */
export function selfName(env: NodeJS.ProcessEnv = process.env): string {
  // npm quotes the command: npm_lifecycle_script is `'switchyard' …` under `npx switchyard …`
  const viaNpx = env.npm_lifecycle_event === 'npx' && /^(["']?)switchyard\1(\s|$)/.test(env.npm_lifecycle_script ?? '');
  return viaNpx || env.npm_lifecycle_event === 'start' ? 'npx switchyard' : 'switchyard';
}

/** `text` with every suggested command (`switchyard …` in backquotes, usage lines) as the user runs it. */
export function asInvoked(text: string, env: NodeJS.ProcessEnv = process.env): string {
  const self = selfName(env);
  if (self === 'switchyard') return text;
  return text.replace(/`switchyard(?=[ `])/g, `\`${self}`).replace(/^(usage: | +)switchyard /gm, `$1${self} `);
}
