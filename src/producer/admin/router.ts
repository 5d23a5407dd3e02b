import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Router, type Response } from 'express';
import { AppError } from '../../shared/domain/errors.js';
import { requireBasic, sameOriginWrites } from '../auth.js';
import type { ProducerDeps } from '../deps.js';
import { ADMIN_STYLE } from './style.js';
import { ADMIN_SCRIPT_ENTRY, renderAdminPage } from './page.js';

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

/**
 * The page's own Content-Security-Policy, in place of helmet's default for the rest of the service:
 * scripts, styles and requests from the page's origin only, nothing inline (no `'unsafe-inline'`,
 * no nonce or hash: the page has no inline script or style), no string reaching an HTML or script
 * sink (Trusted Types with no policy: the script builds the DOM with createElement and
 * textContent), no framing. Without `upgrade-insecure-requests`, which would send the script's
 * requests to https:// on a plain-HTTP deployment and leave the page blank; every URL the page
 * uses is relative, so over HTTPS they stay HTTPS anyway.
 */
export const ADMIN_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

/** Where the page's script modules are: `src/producer/admin/assets/`, or its copy in `dist/` (`npm run build`). */
const ASSETS_DIR = new URL('./assets/', import.meta.url);

let assets: ReadonlyMap<string, string> | undefined;

/**
 * The page's script modules by file name, read once: every `.js` file of the assets directory
 * (nothing else there is served). A producer built without them stops at start, saying so.
 */
function adminAssets(): ReadonlyMap<string, string> {
  if (assets) return assets;
  const dir = fileURLToPath(ASSETS_DIR);
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^[a-z][a-z0-9-]*\.js$/.test(n)) : [];
  if (!names.includes(ADMIN_SCRIPT_ENTRY)) {
    throw new Error(`the operator page's script is missing: no ${ADMIN_SCRIPT_ENTRY} in ${dir} (npm run build copies it there)`);
  }
  assets = new Map(names.map((n) => [n, fs.readFileSync(new URL(n, ASSETS_DIR), 'utf8')]));
  return assets;
}

function send(res: Response, type: string, cache: string, body: string): void {
  res.set({ 'Cache-Control': cache, 'Content-Security-Policy': ADMIN_PAGE_CSP }).type(type).send(body);
}

/**
 * The page itself, its script modules at `/admin/assets/*.js` and its stylesheet, all read at
 * start and sent from memory: `npm start` and `dist/` serve them alike. The page is never stored;
 * the assets are revalidated (ETag) on every load, so a new version is seen at once.
 */
export function adminPageRouter({ config }: ProducerDeps): Router {
  const router = Router();
  const page = renderAdminPage({ readOnly: config.boardReadOnly, databasePath: config.databasePath });
  const scripts = adminAssets();
  router.get('/', (_req, res) => send(res, 'html', 'no-store', page));
  router.get('/assets/:name', (req, res, next) => {
    const body = scripts.get(req.params.name);
    if (body === undefined) next();
    else send(res, 'text/javascript', 'no-cache', body);
  });
  router.get('/admin.css', (_req, res) => send(res, 'text/css', 'no-cache', ADMIN_STYLE));
  return router;
}
