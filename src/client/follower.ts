/**
 * Follows a cluster's routing table from the coordinators' API: Server-Sent Events
 * first, long-polling (`If-None-Match` + `?waitMs=`) when the stream is refused, and a
 * plain GET every `refreshMs` for lag figures (which do not always make a new
 * generation).
 *
 * By SSE it holds a stream to every coordinator URL at once and takes each generation
 * from whichever delivers it first: the leader has a change as soon as it journals it,
 * a follower one read of the journal later, and the client need not know which is which
 * (nor reconnect when one dies). Long-polling uses one URL at a time and moves to the
 * next on an error.
 */
import type { RoutingTable } from '../core/routing.js';

export interface FollowerOptions {
  urls: string[];
  cluster: string;
  transport: 'sse' | 'poll';
  /** plain GET for fresh lag figures, ms (0: never) */
  refreshMs: number;
  /** per-request timeout of a GET, ms */
  requestTimeoutMs: number;
  headers?: Record<string, string>;
}

export type TableSource = 'sse' | 'poll' | 'refresh';

export class RoutingFollower {
  private stopped = false;
  private cursor = 0;
  private readonly aborts = new Set<AbortController>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;
  /** last time any coordinator answered with a table (Date.now()) */
  lastOkAt = 0;
  private error: Error | null = null;
  /** SSE streams open now */
  private open = 0;
  generation = -1;
  /** the ETag of the last table a long poll got (the API's version: generation and lag digest) */
  private etag: string | null = null;

  constructor(
    private readonly opts: FollowerOptions,
    private readonly onTable: (t: RoutingTable, source: TableSource) => void,
    private readonly onError: (err: Error, url: string) => void,
  ) {
    if (opts.urls.length === 0) throw new Error('routing: at least one coordinator URL is needed');
  }

  /** the last error, while no stream is open (null: following, or no error yet) */
  get lastError(): Error | null {
    return this.open > 0 ? null : this.error;
  }

  start(): void {
    this.loop = this.opts.transport === 'sse' ? Promise.all(this.opts.urls.map((u) => this.run(u))).then(() => {}) : this.run(null);
    if (this.opts.refreshMs > 0) {
      this.refreshTimer = setInterval(() => void this.refresh(), this.opts.refreshMs);
      this.refreshTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const a of this.aborts) a.abort();
    await this.loop?.catch(() => {});
  }

  private base(url: string): string {
    return `${url.replace(/\/+$/, '')}/v1/clusters/${encodeURIComponent(this.opts.cluster)}/routing`;
  }

  private accept(t: RoutingTable, source: TableSource): void {
    this.lastOkAt = Date.now();
    this.error = null;
    // a coordinator behind the others may serve an older generation: never go back
    if (t.generation < this.generation) return;
    this.generation = t.generation;
    this.onTable(t, source);
  }

  private fail(err: unknown, url: string): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.error = e;
    if (!this.stopped) this.onError(e, url);
  }

  /** one URL's stream (SSE), or (`fixed` null) long-polls moving through the URLs */
  private async run(fixed: string | null): Promise<void> {
    let backoff = 50;
    while (!this.stopped) {
      const url = fixed ?? this.opts.urls[this.cursor % this.opts.urls.length]!;
      let progressed = false;
      try {
        if (this.opts.transport === 'sse') progressed = await this.sse(url);
        else progressed = await this.longPoll(url);
      } catch (err) {
        this.fail(err, url);
      }
      if (this.stopped) break;
      if (!progressed) {
        this.cursor++;
        await sleep(backoff);
        backoff = Math.min(1000, backoff * 2);
      } else backoff = 50;
    }
  }

  private controller(timeoutMs: number | null): { ac: AbortController; done: () => void } {
    const ac = new AbortController();
    this.aborts.add(ac);
    const timer = timeoutMs === null ? null : setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    return { ac, done: () => { if (timer) clearTimeout(timer); this.aborts.delete(ac); } };
  }

  /** one SSE connection until it ends; → whether it delivered anything */
  private async sse(url: string): Promise<boolean> {
    // the connect itself is bounded; the stream then lives as long as the server keeps it
    const { ac, done } = this.controller(null);
    const connectTimer = setTimeout(() => ac.abort(new Error('SSE connect timed out')), this.opts.requestTimeoutMs);
    let delivered = false;
    let opened = false;
    try {
      const res = await fetch(`${this.base(url)}/stream`, { signal: ac.signal, headers: { Accept: 'text/event-stream', ...this.opts.headers } });
      clearTimeout(connectTimer);
      if (!res.ok || !res.body) {
        await res.body?.cancel().catch(() => {});
        if (res.status === 404 || res.status === 405) return this.longPoll(url);
        throw new Error(`${url}: routing stream answered ${res.status}`);
      }
      this.open++;
      opened = true;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trimStart();
          }
          if (event === 'routing' && data) {
            this.accept(JSON.parse(data) as RoutingTable, 'sse');
            delivered = true;
          }
          // comments (keep-alives) prove the socket, not a fresh view: only tables count
        }
      }
      return delivered;
    } finally {
      if (opened) this.open--;
      clearTimeout(connectTimer);
      done();
    }
  }

  /** long-polls until an error; → whether it delivered anything */
  private async longPoll(url: string): Promise<boolean> {
    let delivered = false;
    while (!this.stopped) {
      const waitMs = 25_000;
      const { ac, done } = this.controller(waitMs + this.opts.requestTimeoutMs);
      try {
        const headers: Record<string, string> = { ...this.opts.headers };
        // the version the server gave, not the generation: once lag is announced the API's
        // ETag is `"<generation>.<digest>"`, and a bare generation never matches (a busy loop)
        const inm = this.etag ?? (this.generation >= 0 ? `"${this.generation}"` : null);
        if (inm !== null) headers['If-None-Match'] = inm;
        const res = await fetch(`${this.base(url)}?waitMs=${waitMs}`, { signal: ac.signal, headers });
        if (res.status === 304) {
          this.lastOkAt = Date.now();
          continue;
        }
        if (!res.ok) {
          await res.body?.cancel().catch(() => {});
          throw new Error(`${url}: routing answered ${res.status}`);
        }
        const t = (await res.json()) as RoutingTable;
        this.etag = res.headers.get('etag');
        this.accept(t, 'poll');
        delivered = true;
      } catch (err) {
        if (!delivered) throw err;
        this.fail(err, url);
        return delivered;
      } finally {
        done();
      }
    }
    return delivered;
  }

  /** a plain GET (lag figures), from the URL in use, else the next one */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    for (let i = 0; i < this.opts.urls.length; i++) {
      const url = this.opts.urls[(this.cursor + i) % this.opts.urls.length]!;
      const { ac, done } = this.controller(this.opts.requestTimeoutMs);
      try {
        const res = await fetch(this.base(url), { signal: ac.signal, headers: this.opts.headers });
        if (!res.ok) {
          await res.body?.cancel().catch(() => {});
          continue;
        }
        this.accept((await res.json()) as RoutingTable, 'refresh');
        return;
      } catch {
        // try the next URL
      } finally {
        done();
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
