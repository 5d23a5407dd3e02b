import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError } from '../shared/domain/errors.js';

/** The one error shape of the API. */
export function errorBody(code: string, message: string) {
  return { success: false as const, error: { code, message } };
}

const REDIS_DOWN =
  /Connection is closed|enableOfflineQueue|MaxRetriesPerRequest|ECONNREFUSED|Stream isn't writeable|Reached the max retries/i;

export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(404).json(errorBody('not_found', `no route for ${req.method} ${req.path}`));
};

/** Maps every error to a status and the JSON shape; a 5xx is logged, a 4xx is the client's. */
export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  void _next;
  const e = err as { type?: string; status?: number; message?: string; name?: string };
  let status = 500;
  let code = 'internal_error';
  let message = 'internal error';
  if (err instanceof AppError) {
    status = err.status;
    code = err.code;
    message = err.message;
  } else if (e?.type === 'entity.too.large') {
    status = 413;
    code = 'payload_too_large';
    message = 'request body is too large';
  } else if (e?.type === 'entity.parse.failed') {
    status = 400;
    code = 'invalid_json';
    message = 'request body is not valid JSON';
  } else if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    status = e.status;
    code = 'bad_request';
    message = e.message ?? 'bad request';
  } else if (REDIS_DOWN.test(e?.message ?? '')) {
    status = 503;
    code = 'redis_unavailable';
    message = 'the job queue (Redis) is unavailable; try again shortly';
  }
  if (status >= 500) req.log?.error({ err }, 'request failed');
  if (res.headersSent) return;
  res.status(status).json(errorBody(code, message));
};
