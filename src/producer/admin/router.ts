import { Router } from 'express';
import { AppError } from '../../shared/domain/errors.js';
import { requireBasic, sameOriginWrites } from '../auth.js';
import type { ProducerDeps } from '../deps.js';
import { ADMIN_SCRIPT } from './script.js';
import { ADMIN_STYLE } from './style.js';
import { renderAdminPage } from './page.js';

export const ADMIN_PATH = '/admin';
/** Where the page reaches the JSON API: the same routers as `/api` and `/health`, behind the page's own login. */
export const ADMIN_API_PATH = `${ADMIN_PATH}/api`;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * What guards the operator's page and the API as the page reaches it: HTTP Basic with the API token
 * (as the queue board), changes only from the page's own origin, and none at all with
 * BOARD_READ_ONLY. A request that passes is handed on with the API's bearer token, so the
 * routers behind `/admin/api` are the very ones scripts call at `/api`: no second implementation.
 * Mounted before the API's body parser, so a stranger's body is never read.
 */
export function adminGuard({ config, apiToken }: ProducerDeps): Router {
  const router = Router();
  router.use(requireBasic(apiToken, 'workstation-backup admin'), sameOriginWrites());
  router.use('/api', (req, res, next) => {
    if (config.boardReadOnly && !SAFE_METHODS.has(req.method)) {
      next(
        new AppError(
          'read_only',
          'BOARD_READ_ONLY is set: the operator page shows everything and changes nothing (use the API with its token)',
          true,
        ),
      );
      return;
    }
    req.headers.authorization = `Bearer ${apiToken}`;
    next();
  });
  return router;
}

/** The page itself and its two assets: static strings, so `npm start` and `dist/` serve them alike. */
export function adminPageRouter({ config }: ProducerDeps): Router {
  const router = Router();
  const page = renderAdminPage({ readOnly: config.boardReadOnly, databasePath: config.databasePath });
  router.get('/', (_req, res) => {
    res.set('Cache-Control', 'no-store').type('html').send(page);
  });
  router.get('/admin.js', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('text/javascript').send(ADMIN_SCRIPT);
  });
  router.get('/admin.css', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('text/css').send(ADMIN_STYLE);
  });
  return router;
}
