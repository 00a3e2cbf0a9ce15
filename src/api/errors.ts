/**
 * Every error the routing API answers with, in one catalogue (in the manner of
 * Fastify's `lib/errors.js`): a machine code, its HTTP status, and what it means. The
 * body is always `{ error: <code>, message }`. `ApiError` is only ever made from a code
 * of this catalogue, and the OpenAPI document (`/docs`) describes each route's error
 * responses from it.
 */
import { Type } from '@sinclair/typebox';

export interface ErrorDef {
  readonly status: number;
  readonly description: string;
}

export const ERRORS = {
  BAD_REQUEST: {
    status: 400,
    description: 'the request is malformed: a path, query or body field fails validation (the message names it, e.g. "querystring/waitMs must be <= 60000"), or the body is not valid JSON',
  },
  UNAUTHORIZED: { status: 401, description: 'an admin route was called without "Authorization: Bearer <admin token>", or with the wrong token; or a read route without the read token when one is configured' },
  ADMIN_DISABLED: { status: 403, description: 'admin routes are disabled on this coordinator: no adminToken is configured' },
  CLUSTER_NOT_FOUND: { status: 404, description: 'no cluster of that name is served by this coordinator' },
  NODE_NOT_FOUND: { status: 404, description: 'the cluster has no node of that id' },
  OPERATION_NOT_FOUND: { status: 404, description: 'no failover or switchover of that id in the cluster history' },
  ROUTE_NOT_FOUND: { status: 404, description: 'no route for this method and path' },
  REJECTED: { status: 409, description: 'the leader refused the command; the message says why (e.g. an operation is in flight, no candidate)' },
  RATE_LIMITED: { status: 429, description: 'too many admin requests from this address in the last minute (api.adminRateLimit); retry after the Retry-After header' },
  PAYLOAD_TOO_LARGE: { status: 413, description: 'the request body is larger than the server accepts' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'the request body has a content type other than application/json' },
  INTERNAL: { status: 500, description: 'an unexpected error; the coordinator logs it' },
  STALE: {
    status: 503,
    description: 'this coordinator has not read the streams from Redis recently: its view may be old, so it names no primary; ask another coordinator',
  },
} as const satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** An expected error: answered as `{ error: code, message }` with the catalogue's status. */
export class ApiError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = ERRORS[code].status;
  }
}

/** The error body every error answer has. */
export const ErrorBody = Type.Object(
  {
    error: Type.Union(
      ERROR_CODES.map((c) => Type.Literal(c)),
      { description: 'a code of the error catalogue' },
    ),
    message: Type.String({ description: 'what went wrong, for humans' }),
  },
  { additionalProperties: false },
);

/**
 * Response schemas for the errors a route can answer with, keyed by status, for a
 * route's `schema.response`: each status's description lists its codes, so the
 * OpenAPI document says which codes a route may answer.
 */
export function errorResponses(...codes: ErrorCode[]): Record<number, typeof ErrorBody & { description: string }> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const c of codes) byStatus.set(ERRORS[c].status, [...(byStatus.get(ERRORS[c].status) ?? []), c]);
  const out: Record<number, typeof ErrorBody & { description: string }> = {};
  for (const [status, list] of byStatus) {
    out[status] = { ...ErrorBody, description: list.map((c) => describeError(c)).join('; ') };
  }
  return out;
}

export function describeError(code: ErrorCode): string {
  return `${code}: ${ERRORS[code].description}`;
}

/**
 * Turn Ajv's errors into one message that names each field, e.g.
 * `querystring/waitMs must be <= 60000`, `body/extra is not allowed`,
 * `querystring/role must be one of "primary", "replica", "any"`.
 */
export interface AjvLikeError {
  instancePath: string;
  keyword: string;
  message?: string | undefined;
  params: Record<string, unknown>;
}

export function validationMessage(errors: readonly AjvLikeError[], context: string | undefined): string {
  const ctx = context ?? 'request';
  const parts: string[] = [];
  const consts = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword === 'const') consts.set(e.instancePath, [...(consts.get(e.instancePath) ?? []), e.params.allowedValue]);
  }
  for (const e of errors) {
    const at = `${ctx}${e.instancePath}`;
    let part: string;
    if (e.keyword === 'required') part = `${ctx}${e.instancePath}/${String(e.params.missingProperty)} is required`;
    else if (e.keyword === 'additionalProperties') part = `${ctx}${e.instancePath}/${String(e.params.additionalProperty)} is not allowed`;
    else if (e.keyword === 'const' || (e.keyword === 'anyOf' && consts.has(e.instancePath))) {
      const allowed = consts.get(e.instancePath) ?? [];
      part = `${at} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'enum') {
      const allowed = Array.isArray(e.params.allowedValues) ? (e.params.allowedValues as unknown[]) : [];
      part = `${at} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
    } else part = `${at} ${e.message ?? 'is invalid'}`;
    if (!parts.includes(part)) parts.push(part);
  }
  return parts.join(', ') || `${ctx} is invalid`;
}
