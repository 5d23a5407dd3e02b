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

/** `Authorization: Bearer <token>` with any of several tokens (e.g. the API's and a metrics-only one). */
export function requireAnyBearer(tokens: string[]): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    // Every token is compared, so the time taken does not tell which one came close.
    const ok = match ? tokens.map((t) => tokenMatches(t, match[1]!)).some(Boolean) : false;
    if (!ok) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="workstation-backup"');
      next(new AppError('unauthorized', match ? 'invalid token' : 'missing bearer token', 401, true));
      return;
    }
    next();
  };
}

/**
 * HTTP Basic for pages a person opens in a browser (the queue board): any user name, the API
 * token as the password. The browser asks for it itself and sends it with every request after.
 */
export function requireBasic(token: string, realm: string): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon < 0 || !tokenMatches(token, decoded.slice(colon + 1))) {
      res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      next(new AppError('unauthorized', match ? 'invalid credentials' : 'credentials required', 401, true));
      return;
    }
    next();
  };
}

/**
 * Browsers send Basic credentials with cross-site requests too, so a page elsewhere could make a
 * logged-in browser retry or delete jobs. Changes are accepted only from the board's own pages.
 */
export function sameOriginWrites(): RequestHandler {
  return (req, _res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    const sameSite =
      site !== undefined ? site === 'same-origin' : origin === undefined || origin === `${req.protocol}://${req.headers.host}`;
    if (!sameSite) {
      next(new AppError('cross_site_request', 'changes to the queues are only accepted from the board itself', 403, true));
      return;
    }
    next();
  };
}
