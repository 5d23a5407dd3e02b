import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { Router } from 'express';
import { QUEUE_REGISTRY, isQueueName } from '../shared/jobs/registry.js';
import type { ProducerDeps } from './deps.js';
import { requireBasic, sameOriginWrites } from './auth.js';
import { ADMIN_PATH } from './admin/router.js';

export const BOARD_PATH = '/admin/queues';

/**
 * Bull Board over every queue of the registry. It has no login of its own: HTTP Basic
 * (any user name, the API token as password) guards the page, its assets and its API alike. With
 * BOARD_READ_ONLY the board shows everything and changes nothing (no retry, clean, promote or
 * remove), for people who should watch but not act.
 */
export function boardRouter({ config, queues, apiToken }: ProducerDeps): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: queues.all().map(
      (q) =>
        new BullMQAdapter(q, {
          readOnlyMode: config.boardReadOnly,
          allowRetries: !config.boardReadOnly,
          description: isQueueName(q.name) ? QUEUE_REGISTRY[q.name].description : '',
        }),
    ),
    serverAdapter,
    options: {
      uiConfig: { boardTitle: 'Workstation backups', hideDocsLink: true, miscLinks: [{ text: 'Operator page', url: ADMIN_PATH }] },
    },
  });
  const router = Router();
  // The body is read here, by the API's parser and limit, so that a malformed or oversized one
  // fails into the service's error handler and its one JSON shape; the board's own parser then
  // finds the body already read and leaves it (it would answer in a shape of its own).
  router.use(
    requireBasic(apiToken, 'workstation-backup queues'),
    sameOriginWrites(),
    express.json({ limit: config.bodyLimit, strict: false }),
  );
  // The adapter's router is an Express app of its own, which would announce itself in X-Powered-By.
  const board = serverAdapter.getRouter() as Router & { disable?: (setting: string) => unknown };
  board.disable?.('x-powered-by');
  router.use(board);
  return router;
}
