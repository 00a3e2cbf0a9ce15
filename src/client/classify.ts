/**
 * The query classifier: is this SQL text safe to send to a hot standby? It reads the
 * statement with PostgreSQL's own grammar (libpg-query: the server's parser compiled to
 * WebAssembly, no native build), so keywords inside strings, dollar quotes, quoted
 * identifiers and comments never count.
 *
 * Pure: no I/O but loading the parser module once (`initClassifier`), no clock. After
 * that `classifyQuery` is synchronous, and answers repeated texts from a bounded LRU cache.
 *
 * A statement is a `write` (send it to the primary) when it could fail on a hot standby
 * or has side effects; anything the parser rejects is a write too. `sticky: true` means
 * it leaves state in the session (SET, temp tables, prepared statements, LISTEN,
 * cursors), so the pool should keep the session on the node it sent it to. The rules,
 * their reasons and their tricky neighbours are in test/client/classify-corpus.json.
 */

export interface Classification {
  kind: 'read' | 'write';
  /** a short stable string, e.g. 'data-modifying CTE', 'row lock', 'function nextval' */
  reason: string;
  /** the session now holds state (SET, temp table, PREPARE, LISTEN, cursor): keep it on this node */
  sticky?: boolean;
}

export interface ClassifyOptions {
  /** extra functions to treat as writes (a name, or schema.name), e.g. your own that write */
  writeFunctions?: readonly string[];
}

/**
 * Functions that write, change shared state, act on the server, or fail during recovery.
 * `set_config` is treated like SET (a write that makes the session sticky).
 */
export const WRITE_FUNCTIONS: readonly string[] = Object.freeze([
  // sequences (currval / lastval only mean something in the session that called nextval)
  'nextval', 'setval', 'currval', 'lastval',
  // transaction ids and WAL positions that fail in recovery, WAL control
  'txid_current', 'pg_current_xact_id', 'pg_current_wal_lsn', 'pg_current_wal_insert_lsn', 'pg_current_wal_flush_lsn',
  'pg_switch_wal', 'pg_create_restore_point', 'pg_walfile_name', 'pg_walfile_name_offset', 'pg_log_standby_snapshot',
  // notifications and advisory locks (a lock taken on a replica excludes no one on the primary)
  'pg_notify',
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock', 'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
  'pg_advisory_unlock', 'pg_advisory_unlock_shared', 'pg_advisory_unlock_all',
  // session settings
  'set_config',
  // large objects
  'lo_create', 'lo_creat', 'lo_import', 'lo_export', 'lo_unlink', 'lo_from_bytea', 'lo_put', 'lowrite', 'lo_truncate', 'lo_truncate64',
  // replication slots and origins
  'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot', 'pg_drop_replication_slot',
  'pg_copy_physical_replication_slot', 'pg_copy_logical_replication_slot', 'pg_logical_slot_get_changes',
  'pg_logical_slot_get_binary_changes', 'pg_replication_slot_advance', 'pg_logical_emit_message',
  'pg_replication_origin_create', 'pg_replication_origin_drop', 'pg_replication_origin_advance',
  // server control
  'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile',
  // writes somewhere else
  'dblink_exec',
]);

/** functions that leave state in the session */
const STICKY_FUNCTIONS = new Set(['set_config', 'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared']);
const DEFAULT_WRITES = new Set(WRITE_FUNCTIONS);

/** the cache holds this many distinct texts; texts longer than CACHE_MAX_CHARS are not cached */
export const CACHE_SIZE = 5000;
const CACHE_MAX_CHARS = 8192;

interface ParseResult {
  stmts?: { stmt?: Record<string, unknown> }[];
}
interface Parser {
  parseSync(sql: string): ParseResult;
}

let parser: Parser | null = null;
let loading: Promise<void> | null = null;

/** Load PostgreSQL's parser (once; later calls return at once). */
export function initClassifier(): Promise<void> {
  if (parser) return Promise.resolve();
  loading ??= (async () => {
    const m = await import('libpg-query');
    await m.loadModule();
    parser = { parseSync: (sql) => m.parseSync(sql) };
  })().catch((err: unknown) => {
    loading = null;
    throw new Error(`classifier: could not load the PostgreSQL parser (libpg-query): ${err instanceof Error ? err.message : String(err)}`);
  });
  return loading;
}

/** Has `initClassifier` finished? */
export function classifierReady(): boolean {
  return parser !== null;
}

/** A cached analysis: the classification without options, and the functions the text calls. */
interface Entry {
  base: Classification;
  /** every function called, as 'name' and 'schema.name' (only when base is a read) */
  funcs: readonly string[];
}

/**
 * A bounded cache with LRU-like eviction and no bookkeeping on a hit: two generations.
 * Hits in `young` cost one Map lookup; a hit in `old` moves the entry to `young`; when
 * `young` holds CACHE_SIZE / 2 texts it becomes `old` and the previous `old` (the texts
 * not used for a whole generation) is dropped.
 */
let young = new Map<string, Entry>();
let old = new Map<string, Entry>();

function remember(sql: string, e: Entry): void {
  if (young.size >= CACHE_SIZE / 2) {
    old = young;
    young = new Map();
  }
  young.set(sql, e);
}

/**
 * Classify one SQL text (one statement or several separated by `;`). Throws if the
 * parser is not loaded yet: `await initClassifier()` first.
 */
export function classifyQuery(sql: string, opts?: ClassifyOptions): Classification {
  let e = young.get(sql);
  if (e === undefined) {
    e = old.get(sql);
    if (e === undefined) {
      if (typeof sql !== 'string') throw new TypeError(`classifyQuery: sql must be a string, got ${typeof sql}`);
      e = analyse(sql);
      if (sql.length <= CACHE_MAX_CHARS) remember(sql, e);
    } else {
      remember(sql, e);
    }
  }
  const extra = opts?.writeFunctions;
  if (extra !== undefined && extra.length > 0 && e.funcs.length > 0 && e.base.kind === 'read') {
    for (const f of extra) {
      if (e.funcs.includes(f) || e.funcs.includes(f.toLowerCase())) return frozen('write', `function ${f}`);
    }
  }
  return e.base;
}

function frozen(kind: Classification['kind'], reason: string, sticky = false): Classification {
  return Object.freeze(sticky ? { kind, reason, sticky: true } : { kind, reason });
}

/** Forget every cached classification (tests, benchmarks). */
export function clearClassifierCache(): void {
  young = new Map();
  old = new Map();
}

/** How many texts the cache holds now (at most CACHE_SIZE). */
export function classifierCacheSize(): number {
  return young.size + old.size;
}

/* ------------------------------------------------------------------ analysis */

const READ: Entry = Object.freeze({ base: frozen('read', 'read-only query'), funcs: [] });

function analyse(sql: string): Entry {
  if (!parser) throw new Error('classifier not loaded: await initClassifier() before classifyQuery()');
  if (sql.trim() === '') return { base: frozen('read', 'empty'), funcs: [] };
  let stmts: Record<string, unknown>[];
  try {
    stmts = (parser.parseSync(sql).stmts ?? []).map((s) => s.stmt ?? {});
  } catch {
    return { base: frozen('write', 'parse error'), funcs: [] };
  }
  if (stmts.length === 0) return { base: frozen('read', 'empty'), funcs: [] };
  let write: Classification | null = null;
  let sticky = false;
  const funcs = new Set<string>();
  let readReason: string | null = null;
  for (const stmt of stmts) {
    const c = statement(stmt, funcs);
    if (c.sticky) sticky = true;
    if (c.kind === 'write') write ??= c;
    else readReason = readReason === null ? c.reason : readReason === c.reason ? readReason : 'read-only statements';
  }
  if (write) return { base: sticky && !write.sticky ? frozen('write', write.reason, true) : write, funcs: [] };
  if (readReason === 'read-only query' && funcs.size === 0 && !sticky) return READ;
  return { base: frozen('read', readReason ?? 'read-only query', sticky), funcs: [...funcs] };
}

/** What a walk of a statement's tree found. */
interface Found {
  modifying: boolean;
  rowLock: boolean;
  into: boolean;
  temp: boolean;
  tempRef: boolean;
  writeFunc: string | null;
}

function walk(node: unknown, f: Found, funcs: Set<string>): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, f, funcs);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  // a RangeVar is inlined where a field can only hold one (CreateStmt.relation, InsertStmt.relation, …)
  const r = node as { schemaname?: unknown; relpersistence?: unknown };
  if (r.relpersistence === 't') f.temp = true;
  if (typeof r.schemaname === 'string' && (r.schemaname === 'pg_temp' || r.schemaname.startsWith('pg_temp_'))) f.tempRef = true;
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    switch (k) {
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        f.modifying = true;
        break;
      case 'lockingClause':
        if (Array.isArray(v) && v.length > 0) f.rowLock = true;
        break;
      case 'intoClause':
        f.into = true;
        break;
      case 'FuncCall': {
        const names = ((v as { funcname?: { String?: { sval?: string } }[] }).funcname ?? []).map((n) => n.String?.sval ?? '');
        const name = names[names.length - 1] ?? '';
        const schema = names.length > 1 ? names[names.length - 2] : undefined;
        // pg_catalog.nextval is nextval; someschema.nextval is someone else's function
        if (DEFAULT_WRITES.has(name) && (schema === undefined || schema === 'pg_catalog')) f.writeFunc ??= name;
        funcs.add(name);
        if (schema !== undefined) funcs.add(`${schema}.${name}`);
        break;
      }
    }
    if (v !== null && typeof v === 'object') walk(v, f, funcs);
  }
}

function found(node: unknown, funcs: Set<string>): Found {
  const f: Found = { modifying: false, rowLock: false, into: false, temp: false, tempRef: false, writeFunc: null };
  walk(node, f, funcs);
  return f;
}

/** A query (SELECT, VALUES, TABLE, or a DML statement) judged by what its tree holds. */
function query(node: Record<string, unknown>, funcs: Set<string>): Classification {
  const [type] = Object.keys(node);
  if (type && DML[type]) {
    found(node, funcs);
    return frozen('write', DML[type]);
  }
  const f = found(node, funcs);
  if (f.modifying) return frozen('write', 'data-modifying CTE');
  if (f.into) return f.temp ? frozen('write', 'temp table', true) : frozen('write', 'SELECT INTO');
  if (f.rowLock) return frozen('write', 'row lock');
  if (f.tempRef) return frozen('write', 'temp table');
  if (f.writeFunc) return frozen('write', `function ${f.writeFunc}`, STICKY_FUNCTIONS.has(f.writeFunc));
  return READ.base;
}

const DML: Readonly<Record<string, string>> = { InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE' };

/** Statements that are writes whatever they hold, with their reason; sticky ones leave session state. */
const UTILITY: Readonly<Record<string, [string, boolean?]>> = {
  TruncateStmt: ['TRUNCATE'],
  ListenStmt: ['LISTEN', true],
  UnlistenStmt: ['UNLISTEN', true],
  NotifyStmt: ['NOTIFY'],
  LockStmt: ['LOCK'],
  CallStmt: ['CALL'],
  DoStmt: ['DO'],
  CheckPointStmt: ['CHECKPOINT'],
  ClusterStmt: ['CLUSTER'],
  ReindexStmt: ['REINDEX'],
  RefreshMatViewStmt: ['REFRESH MATERIALIZED VIEW'],
  TransactionStmt: ['transaction control'],
  VariableSetStmt: ['session setting', true],
  ConstraintsSetStmt: ['session setting'],
  DiscardStmt: ['session state'],
  DeallocateStmt: ['prepared statement', true],
  ExecuteStmt: ['prepared statement', true],
  DeclareCursorStmt: ['cursor', true],
  FetchStmt: ['cursor', true],
  ClosePortalStmt: ['cursor', true],
  LoadStmt: ['LOAD'],
  AlterSystemStmt: ['ALTER SYSTEM'],
  CreateTableAsStmt: ['DDL'],
};

function statement(stmt: Record<string, unknown>, funcs: Set<string>): Classification {
  const [type] = Object.keys(stmt);
  const body = (type ? stmt[type] : {}) as Record<string, unknown>;
  switch (type) {
    case 'SelectStmt':
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      return query(stmt, funcs);
    case 'VariableShowStmt':
      return frozen('read', 'SHOW');
    case 'ExplainStmt': {
      if (!explainAnalyzes(body.options)) return frozen('read', 'EXPLAIN');
      const inner = statement((body.query ?? {}) as Record<string, unknown>, funcs);
      return inner.kind === 'write' ? frozen('write', 'EXPLAIN ANALYZE of a write', inner.sticky) : frozen('read', 'EXPLAIN ANALYZE');
    }
    case 'CopyStmt': {
      if (body.is_from === true) return frozen('write', 'COPY FROM');
      if (body.is_program === true || typeof body.filename === 'string') return frozen('write', 'COPY to a server file or program');
      if (body.query) {
        const inner = query(body.query as Record<string, unknown>, funcs);
        if (inner.kind === 'write') return inner;
      }
      return frozen('read', 'COPY TO');
    }
    case 'PrepareStmt': {
      // a prepared statement lives in its session: the pool keeps that session where it
      // is, and EXECUTE (whose text does not say what was prepared) goes to the primary
      const inner = statement((body.query ?? {}) as Record<string, unknown>, funcs);
      return inner.kind === 'write' ? frozen('write', 'PREPARE of a write', true) : frozen('write', 'prepared statement', true);
    }
    case 'VacuumStmt':
      return frozen('write', body.is_vacuumcmd === true ? 'VACUUM' : 'ANALYZE');
    case undefined:
      return frozen('read', 'empty');
    default: {
      const u = UTILITY[type];
      if (u) {
        if (type === 'CreateTableAsStmt' && found(stmt, funcs).temp) return frozen('write', 'temp table', true);
        return frozen('write', u[0], u[1] ?? false);
      }
      // everything else is DDL (CREATE / ALTER / DROP / GRANT / COMMENT …) or another
      // utility statement a standby refuses
      if (found(stmt, funcs).temp) return frozen('write', 'temp table', true);
      return frozen('write', /^(Create|Alter|Drop|Rename|Comment|Grant|Revoke|Define|Composite|Reassign|Sec|Import|Index|View|Rule|Trigger)/.test(type) ? 'DDL' : type.replace(/Stmt$/, ''));
    }
  }
}

/** Does EXPLAIN's option list turn ANALYZE on? (EXPLAIN ANALYZE, (ANALYZE), (ANALYZE true|on|1)) */
function explainAnalyzes(options: unknown): boolean {
  if (!Array.isArray(options)) return false;
  let on = false;
  for (const o of options as { DefElem?: { defname?: string; arg?: Record<string, Record<string, unknown>> } }[]) {
    const d = o.DefElem;
    if (d?.defname !== 'analyze') continue;
    const arg = d.arg;
    if (!arg) on = true;
    else if (arg.String) on = !['false', 'off', 'no', '0'].includes(typeof arg.String.sval === 'string' ? arg.String.sval.toLowerCase() : '');
    else if (arg.Boolean) on = arg.Boolean.boolval === true;
    else if (arg.Integer) on = (arg.Integer.ival ?? 0) !== 0;
    else on = true;
  }
  return on;
}
