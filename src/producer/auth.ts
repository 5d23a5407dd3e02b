import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { MIN_TOKEN_LENGTH } from '../shared/runtime/api-token.js';
import { AppError } from '../shared/domain/errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares in constant time; hashing first makes the lengths equal. */
export function tokenMatches(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

/**
 * A guard built with an empty or short token would let an empty password through: refuse to build
 * it, so such a token stops the start instead of opening the API.
 */
function assertStrongToken(token: string): void {
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new Error(`an access token must have at least ${MIN_TOKEN_LENGTH} characters and no spaces`);
  }
}

/** What the Authorization header says about a Bearer token: none given, one of `tokens`, or a wrong one. */
export function bearerOutcome(tokens: string[], header: string | undefined): 'missing' | 'valid' | 'invalid' {
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) return 'missing';
  // Every token is compared, so the time taken does not tell which one came close.
  return tokens.map((t) => tokenMatches(t, match[1]!)).some(Boolean) ? 'valid' : 'invalid';
}

function bearerGuard(tokens: string[], wrong: string): RequestHandler {
  for (const t of tokens) assertStrongToken(t);
  return (req, res, next) => {
    const outcome = bearerOutcome(tokens, req.headers.authorization);
    if (outcome !== 'valid') {
      res.setHeader('WWW-Authenticate', 'Bearer realm="workstation-backup"');
      next(new AppError('unauthorized', outcome === 'missing' ? 'missing bearer token' : wrong, true));
      return;
    }
    next();
  };
}

/** `Authorization: Bearer <token>` or a JSON 401. */
export function requireBearer(token: string): RequestHandler {
  return bearerGuard([token], 'invalid API token');
}

/** `Authorization: Bearer <token>` with any of several tokens (e.g. the API's and a metrics-only one). */
export function requireAnyBearer(tokens: string[]): RequestHandler {
  return bearerGuard(tokens, 'invalid token');
}

/**
 * HTTP Basic for pages a person opens in a browser (the queue board): any user name, the API
 * token as the password. The browser asks for it itself and sends it with every request after.
 */
export function requireBasic(token: string, realm: string): RequestHandler {
  assertStrongToken(token);
  return (req, res, next) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    if (password === '' || !tokenMatches(token, password)) {
      res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      next(new AppError('unauthorized', match ? 'invalid credentials' : 'credentials required', true));
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
      next(new AppError('cross_site_request', 'changes to the queues are only accepted from the board itself', true));
      return;
    }
    next();
  };
}
