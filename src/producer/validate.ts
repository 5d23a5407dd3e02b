import type { z } from 'zod';
import { badRequest } from '../shared/domain/errors.js';

function describe(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`;
  return `${where}${issue.message}`;
}

/** A JSON body checked against a schema; a missing body counts as `{}`. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const value = body === undefined || body === null ? {} : body;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest('request body must be a JSON object', 'invalid_body');
  const result = schema.safeParse(value);
  if (!result.success) throw badRequest(describe(result.error), 'invalid_body');
  return result.data;
}

export function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.output<S> {
  const result = schema.safeParse(query);
  if (!result.success) throw badRequest(describe(result.error), 'invalid_query');
  return result.data;
}

/** A catalog id from the URL: a positive whole number, nothing else. */
export function parseId(raw: unknown): number {
  if (typeof raw !== 'string' || !/^[1-9]\d{0,14}$/.test(raw)) {
    throw badRequest(`invalid id ${JSON.stringify(String(raw).slice(0, 40))}: expected a positive whole number`, 'invalid_id');
  }
  return Number(raw);
}
