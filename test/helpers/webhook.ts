import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
  /** The status it was answered with; undefined while held. */
  status?: number;
}

/**
 * A local stand-in for an alert webhook. Answers 200 unless told otherwise: `plan('hold', 503)`
 * makes the next request wait until `release()`, and the one after it get a 503.
 */
export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  private readonly upcoming: ('hold' | number)[] = [];
  private readonly held: { delivery: Delivery; res: http.ServerResponse }[] = [];

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<WebhookReceiver> {
    const server = http.createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (req, res) => receiver.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/backup`;
  }

  plan(...responses: ('hold' | number)[]): void {
    this.upcoming.push(...responses);
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** Answers the oldest held request. */
  release(status: number): void {
    const h = this.held.shift();
    if (!h) throw new Error('no request is held');
    h.delivery.status = status;
    h.res.writeHead(status).end();
  }

  of(event: string): Delivery[] {
    return this.deliveries.filter((d) => d.body.event === event);
  }

  async close(): Promise<void> {
    for (const h of this.held.splice(0)) h.res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const delivery: Delivery = { body: JSON.parse(text) as Record<string, unknown>, headers: req.headers };
      this.deliveries.push(delivery);
      const next = this.upcoming.shift() ?? 200;
      if (next === 'hold') {
        this.held.push({ delivery, res });
        return;
      }
      delivery.status = next;
      res.writeHead(next).end();
    });
  }
}
