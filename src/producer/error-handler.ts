import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, type ErrorCode } from '../shared/domain/errors.js';

/**
 * The HTTP status of every error code: the one place where the domain's codes meet HTTP. A
 * `Record` over the whole union, so a new code does not compile until it has a status here.
 * Most codes are met only on a failed job (whose answer the route builds itself); they are mapped
 * all the same, for an error that one day reaches a request directly.
 */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_body: 400,
  invalid_query: 400,
  invalid_id: 400,
  invalid_json: 400,
  // The API checks a backup's state before queueing its restore; the worker's own check fails a job.
  backup_not_restorable: 400,
  unauthorized: 401,
  cross_site_request: 403,
  read_only: 403,
  not_found: 404,
  backup_not_found: 404,
  job_not_found: 404,
  job_finished: 409,
  conflict: 409,
  lock_held: 409,
  lock_lost: 409,
  restore_copying: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  database_missing: 422,
  database_damaged: 422,
  database_unreadable: 422,
  backup_dir_not_writable: 422,
  backup_invalid: 422,
  no_valid_backup: 422,
  no_backups: 422,
  no_wal_archive: 422,
  outside_recovery_window: 422,
  not_wal_mode: 422,
  page_size_mismatch: 422,
  restore_damaged: 422,
  restore_failed: 422,
  restore_rolled_back: 422,
  rollback_failed: 422,
  key_file_unreadable: 422,
  key_file_invalid: 422,
  key_unavailable: 422,
  not_encrypted: 422,
  decryption_failed: 422,
  cancelled: 422,
  internal_error: 500,
  backup_missing: 500,
  unavailable: 503,
  lock_unavailable: 503,
  redis_unavailable: 503,
};

/** The one error shape of the API. */
export function errorBody(code: string, message: string) {
  return { success: false as const, error: { code, message } };
}

const REDIS_DOWN =
  /Connection is closed|enableOfflineQueue|MaxRetriesPerRequest|ECONNREFUSED|Stream isn't writeable|Reached the max retries/i;

export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(HTTP_STATUS.not_found).json(errorBody('not_found', `no route for ${req.method} ${req.path}`));
};

/** Maps every error to a status and the JSON shape; a 5xx is logged, a 4xx is the client's. */
export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  void _next;
  const e = err as { type?: string; status?: number; message?: string; name?: string };
  let code: ErrorCode = 'internal_error';
  let message = 'internal error';
  // Express's own 4xx errors that have no code of ours keep the status they came with.
  let passedStatus: number | undefined;
  if (err instanceof AppError) {
    code = err.code;
    message = err.message;
  } else if (e?.type === 'entity.too.large') {
    code = 'payload_too_large';
    message = 'request body is too large';
  } else if (e?.type === 'entity.parse.failed') {
    code = 'invalid_json';
    message = 'request body is not valid JSON';
  } else if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    passedStatus = e.status;
    code = 'bad_request';
    message = e.message ?? 'bad request';
  } else if (REDIS_DOWN.test(e?.message ?? '')) {
    code = 'redis_unavailable';
    message = 'the job queue (Redis) is unavailable; try again shortly';
  }
  const status = passedStatus ?? HTTP_STATUS[code];
  if (status >= 500) req.log?.error({ err }, 'request failed');
  if (res.headersSent) return;
  res.status(status).json(errorBody(code, message));
};
