import type { IncomingMessage } from 'node:http';
import type { RequestHandler, Response } from 'express';

/** How much of a body nobody read is still read (and dropped) so that the answer arrives. */
export const DRAIN_LIMIT = { bytes: 8 * 1024 * 1024, ms: 5_000 } as const;

const hasBody = (req: IncomingMessage) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/** Reads and drops the rest of a body; true when it ended within the limits. */
function discardRest(req: IncomingMessage, limit: { bytes: number; ms: number }): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (ended: boolean) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      resolve(ended);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit.bytes) finish(false);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(req.readableEnded);
    const timer = setTimeout(() => finish(false), limit.ms);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.once('error', onClose);
    req.resume();
  });
}

/**
 * An answer decided from the headers alone (401, 415, 404) would otherwise go out while the client
 * is still sending its body. Node then closes the connection with those bytes unread, the kernel
 * answers the rest of the body with a reset, and a client still writing sees ECONNRESET or EPIPE
 * instead of the answer. So the end of an answer waits until the body is read and dropped, within
 * DRAIN_LIMIT; past it the connection is closed anyway (a client sending that much unasked-for data
 * is not owed a clean ending).
 */
export function readBodyBeforeAnswering(limit: { bytes: number; ms: number } = DRAIN_LIMIT): RequestHandler {
  return (req, res, next) => {
    if (!hasBody(req)) return next();
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    let waiting = false;
    res.end = ((...args: unknown[]) => {
      if (req.complete) return end(...args);
      if (!waiting) {
        waiting = true;
        void discardRest(req, limit).then((ended) => {
          if (!ended && !res.headersSent) res.setHeader('Connection', 'close');
          end(...args);
        });
      }
      return res;
    }) as Response['end'];
    next();
  };
}
