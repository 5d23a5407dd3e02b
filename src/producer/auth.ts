import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../shared/errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares in constant time; hashing first makes the lengths equal. */
export function tokenMatches(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

/** `Authorization: Bearer <token>` or a JSON 401. */
export function requireBearer(token: string): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match || !tokenMatches(token, match[1]!)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="workstation-backup"');
      next(new AppError('unauthorized', match ? 'invalid API token' : 'missing bearer token', 401, true));
      return;
    }
    next();
  };
}
