import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { AppError } from '../shared/domain/errors.js';
import { requireBearer } from './auth.js';
import { ADMIN_API_PATH, ADMIN_PATH, adminGuard, adminPageRouter } from './admin/router.js';
import { BOARD_PATH, boardRouter } from './board.js';
import type { ProducerDeps } from './deps.js';
import { errorHandler, notFoundHandler } from './error-handler.js';
import { metricsRouter } from './routes/metrics.js';
import { backupsRouter } from './routes/backups.js';
import { healthRouter } from './routes/health.js';
import { jobsRouter } from './routes/jobs.js';
import { restoresRouter } from './routes/restores.js';
import { recoveryWindowRouter } from './routes/recovery-window.js';
import { readBodyBeforeAnswering } from './unread-body.js';

export type { ProducerDeps };

/** Builds the HTTP API from its dependencies; `server.ts` only listens. */
export function createApp(deps: ProducerDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');
  app.use(readBodyBeforeAnswering());
  // helmet's default CSP but for upgrade-insecure-requests: over plain HTTP on an address other than
  // loopback it sends the board's own scripts to https://, and the board stays blank.
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  app.use(
    pinoHttp({
      logger: deps.log,
      genReqId: (req, res) => {
        const id = randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      // Headers are left out entirely: they carry the bearer token.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );

  const health = healthRouter(deps);
  app.use('/health', health);
  app.use('/metrics', metricsRouter(deps));
  app.use(BOARD_PATH, boardRouter(deps));
  // The operator's page: Basic auth as the board; its script calls the API's own routers below.
  app.use(ADMIN_PATH, adminGuard(deps));
  // The token is checked before a body is parsed: a stranger's JSON is never read into memory.
  app.use('/api', requireBearer(deps.apiToken));

  // Bodies must be JSON; an empty body is fine (most POSTs take none).
  app.use((req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json')) {
      next(new AppError('unsupported_media_type', 'request bodies must be application/json', true));
      return;
    }
    next();
  });
  app.use(express.json({ limit: deps.config.bodyLimit, strict: false }));

  const api = express.Router();
  api.use('/backups', backupsRouter(deps));
  api.use('/jobs', jobsRouter(deps));
  api.use('/restores', restoresRouter(deps));
  api.use('/recovery-window', recoveryWindowRouter(deps));
  app.use('/api', api);
  app.use(`${ADMIN_API_PATH}/health`, health);
  app.use(ADMIN_API_PATH, api);
  app.use(ADMIN_PATH, adminPageRouter(deps));

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
