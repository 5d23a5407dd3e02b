import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string[]>;
  body: string;
}

/** Parses the first HTTP/1.1 response in `data` (Content-Length or chunked body). */
export function parseResponse(data: Buffer): RawResponse {
  // Interim answers (100 Continue to `Expect: 100-continue`) come first: skip to the final one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(data.toString('latin1', 0, 16))) {
    const end = data.indexOf('\r\n\r\n');
    if (end < 0) break;
    data = data.subarray(end + 4);
  }
  const text = data.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
  if (!status) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim().toLowerCase();
    (headers[name] ??= []).push(line.slice(i + 1).trim());
  }
  let rest = data.subarray(Buffer.byteLength(text.slice(0, split + 4), 'latin1'));
  let body: Buffer;
  if (headers['transfer-encoding']?.[0]?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    for (;;) {
      const end = rest.indexOf('\r\n');
      const size = parseInt(rest.subarray(0, end).toString(), 16);
      if (!size) break;
      parts.push(rest.subarray(end + 2, end + 2 + size));
      rest = rest.subarray(end + 2 + size + 2);
    }
    body = Buffer.concat(parts);
  } else {
    const length = Number(headers['content-length']?.[0] ?? rest.length);
    body = rest.subarray(0, length);
  }
  return { status, headers, body: body.toString('utf8') };
}

/**
 * Sends bytes exactly as given (duplicate headers, broken framing and all) and reads the answer
 * until the server closes the connection.
 */
export function rawRequest(port: number, request: Buffer, timeoutMs = 15_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(request.subarray(0, 200).toString('latin1'))}`));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    // The server may answer (413, 400) and close before reading all of a large body.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (err) {
        reject(new Error(`${(err as Error).message} (request ${JSON.stringify(request.subarray(0, 200).toString('latin1'))})`));
      }
    });
    socket.write(request);
  });
}

export interface RequestSpec {
  method: string;
  path: string;
  headers: [string, string][];
  body?: Buffer;
  /** Content-Length as sent; by default the body's length. */
  contentLength?: string | null;
}

/** The bytes of a request; `Connection: close` so the answer ends with the connection. */
export function serialize(spec: RequestSpec): Buffer {
  const head = [`${spec.method} ${spec.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of spec.headers) head.push(`${name}: ${value}`);
  const length = spec.contentLength === undefined ? (spec.body ? String(spec.body.length) : null) : spec.contentLength;
  if (length !== null) head.push(`Content-Length: ${length}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), spec.body ?? Buffer.alloc(0)]);
}
