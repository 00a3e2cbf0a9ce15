/** A job of the coordinator for an agent (BullMQ queue of its node), and a refusal of one. */
import { UnrecoverableError } from 'bullmq';
import type { JobCode } from '../src/errors.js';
import type { Upstream } from '../src/engines/types.js';

export interface JobData {
  epoch: number;
  operationId: string;
  action: 'promote' | 'demote' | 'follow' | 'rejoin' | 'unfence' | 'sync' | 'restart' | 'fence' | 'switchover' | 'freeze';
  /** freeze: elections frozen on the set's secondaries this long (0: unfrozen) */
  freezeSecs?: number;
  node: string;
  /** the stream id of the journal entry that asked for it: a job older than the newest acted on is refused */
  journalId?: string;
  upstream?: Upstream;
  sync?: { names: string[]; count: number; method?: 'FIRST' | 'ANY' };
  /** the leader's wall clock after which the job is stale (its decision would have been retried) */
  expiresAt?: number;
}

/** A job refused on purpose: reported with a code, never retried. */
export class JobRefused extends UnrecoverableError {
  constructor(
    readonly code: JobCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export function requireUpstream(data: JobData): Upstream {
  const u = data.upstream;
  if (!u || typeof u.host !== 'string' || !Number.isInteger(u.port)) throw new JobRefused('bad-job', `${data.action} needs an upstream {id, host, port}`);
  return u;
}
