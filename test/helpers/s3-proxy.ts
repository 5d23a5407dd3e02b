import http from 'node:http';
import type net from 'node:net';
import { Transform } from 'node:stream';

/**
 * Records `method url` of every request and forwards it, bytes untouched (the signature covers
 * the Host header, which is kept), to the S3 server behind it. It listens only while that server
 * runs, so that a stopped server is refused on the port the service knows, as a real outage is.
 */
export class RecordingProxy {
  readonly requests: string[] = [];
  private server: http.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Called with each request line once it is recorded (a test waits for the first UploadPart). */
  onRequest: ((line: string) => void) | undefined;
  /** Flips one byte of the body of PUT requests whose line matches: damage in transit. */
  corruptPuts: RegExp | undefined;

  constructor(
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  async listen(): Promise<void> {
    const server = http.createServer((req, res) => {
      const line = `${req.method} ${req.url}`;
      this.requests.push(line);
      this.onRequest?.(line);
      const upstream = http.request(
        { host: '127.0.0.1', port: this.upstreamPort, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
          answer.pipe(res);
          answer.on('error', () => res.destroy());
        },
      );
      // The server went away: the client sees its connection dropped, not an answer.
      upstream.on('error', () => req.socket.destroy());
      const corrupt = req.method === 'PUT' && this.corruptPuts?.test(line);
      let flipped = false;
      const damage = new Transform({
        transform(chunk: Buffer, _enc, done) {
          if (corrupt && !flipped && chunk.length) {
            chunk = Buffer.from(chunk);
            chunk[0]! ^= 0xff;
            flipped = true;
          }
          done(null, chunk);
        },
      });
      req.pipe(damage).pipe(upstream);
      req.on('error', () => upstream.destroy());
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
