/**
 * A circuit breaker per node: closed → open after `failures` consecutive node
 * failures; open for `openMs`, then half-open: one probe statement goes through; its
 * success closes the circuit, its failure opens it again. Time is passed in.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** consecutive node failures that open the circuit (default 3) */
  failures: number;
  /** how long it stays open before one probe is let through, ms (default 2000) */
  openMs: number;
}

export class Breaker {
  state: BreakerState = 'closed';
  private fails = 0;
  private openedAt = 0;
  private probing = false;

  constructor(private readonly opts: BreakerOptions) {}

  /** may a statement go to this node now? (in half-open, only the one probe) */
  allows(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open' && now - this.openedAt >= this.opts.openMs) {
      this.state = 'half-open';
      this.probing = false;
    }
    if (this.state === 'half-open' && !this.probing) return true;
    return false;
  }

  /** would `allows` say yes, without claiming the probe */
  peek(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') return now - this.openedAt >= this.opts.openMs;
    return !this.probing;
  }

  /**
   * A statement is sent: past `openMs` an open circuit turns half-open and this
   * statement is its one probe (→ true: the node's availability changed). The pool
   * chooses with `peek` and sends with `begin(now)`.
   */
  begin(now?: number): boolean {
    if (this.state === 'open' && now !== undefined && now - this.openedAt >= this.opts.openMs) {
      this.state = 'half-open';
      this.probing = false;
    }
    if (this.state === 'half-open' && !this.probing) {
      this.probing = true;
      return true;
    }
    return false;
  }

  /** → true when this success closed the circuit */
  success(): boolean {
    this.fails = 0;
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.probing = false;
      return true;
    }
    return false;
  }

  /** → true when this failure opened the circuit */
  failure(now: number): boolean {
    this.fails++;
    // an open circuit past openMs lets statements through (a lease does not claim the probe): a failure there re-opens it
    const expired = this.state === 'open' && now - this.openedAt >= this.opts.openMs;
    if (this.state === 'half-open' || expired || (this.state === 'closed' && this.fails >= this.opts.failures)) {
      this.state = 'open';
      this.openedAt = now;
      this.probing = false;
      return true;
    }
    return false;
  }
}
