import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { cliFailure } from '../../src/cli/context.js';
import { EXIT } from '../../src/cli/output.js';
import { HTTP_STATUS, errorHandler } from '../../src/producer/error-handler.js';
import {
  AppError,
  DamagedDatabase,
  ERROR_CODES,
  KeyError,
  LockHeldError,
  LockLostError,
  badRequest,
  notFound,
  permanentFailure,
  unavailable,
} from '../../src/shared/domain/errors.js';
import { NoValidBackup } from '../../src/shared/domain/errors.js';

/** An app whose one route throws `err`, answered by the producer's error handler. */
function throwing(err: unknown) {
  const app = express();
  app.post('/', express.json(), () => {
    throw err;
  });
  app.use(errorHandler);
  return app;
}

describe('error codes', () => {
  it('give every code an HTTP error status, and keep the status off the error itself', () => {
    for (const code of ERROR_CODES) expect(HTTP_STATUS[code], code).toBeGreaterThanOrEqual(400);
    expect(Object.keys(new AppError('lock_held', 'held'))).not.toContain('status');
  });

  it.each([
    [badRequest('bad', 'invalid_body'), 400, 'invalid_body'],
    [notFound('gone', 'backup_not_found'), 404, 'backup_not_found'],
    [new LockHeldError('worker:1'), 409, 'lock_held'],
    [new LockLostError('lost'), 409, 'lock_lost'],
    [new DamagedDatabase('damaged', [], undefined), 422, 'database_damaged'],
    [new KeyError('key_unavailable', 'no key'), 422, 'key_unavailable'],
    [new NoValidBackup([]), 422, 'no_backups'],
    [permanentFailure('restore_failed', 'failed'), 422, 'restore_failed'],
    [new AppError('lock_unavailable', 'no lock', true), 503, 'lock_unavailable'],
    [unavailable('later'), 503, 'unavailable'],
    [new AppError('backup_missing', 'row missing'), 500, 'backup_missing'],
    [Object.assign(new Error('method not allowed'), { status: 405 }), 405, 'bad_request'],
    [new Error('Connection is closed.'), 503, 'redis_unavailable'],
    [new Error('boom'), 500, 'internal_error'],
  ])('answer %s with the status the API has always given it', async (err, status, code) => {
    const res = await request(throwing(err)).post('/');
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ success: false, error: { code, message: expect.any(String) } });
  });

  it('answer a body that is not JSON with 400 invalid_json', async () => {
    const res = await request(throwing(new Error('unreached')))
      .post('/')
      .set('content-type', 'application/json')
      .send('{');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ success: false, error: { code: 'invalid_json', message: 'request body is not valid JSON' } });
  });

  it('end a CLI operation with the exit code its error code maps to', () => {
    const held = cliFailure(new LockHeldError('worker:1'), 'backup');
    expect([held.exitCode, held.code, held.message]).toEqual([EXIT.busy, 'lock_held', new LockHeldError('worker:1').message]);
    const invalid = cliFailure(permanentFailure('backup_invalid', 'backup 3 failed verification'), 'restore');
    expect([invalid.exitCode, invalid.code, invalid.message]).toEqual([EXIT.invalid, 'backup_invalid', 'backup 3 failed verification']);
    const noLock = cliFailure(new AppError('lock_unavailable', 'no lock', true), 'backup');
    expect([noLock.exitCode, noLock.message]).toEqual([EXIT.failed, 'no lock']);
    const failed = cliFailure(permanentFailure('restore_rolled_back', 'rolled back'), 'restore');
    expect([failed.exitCode, failed.code, failed.message]).toEqual([EXIT.failed, 'restore_rolled_back', 'restore failed: rolled back']);
    const plain = cliFailure(new Error('disk full'), 'backup');
    expect([plain.exitCode, plain.code, plain.message]).toEqual([EXIT.failed, 'backup_failed', 'backup failed: disk full']);
  });
});
