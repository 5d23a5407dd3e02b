import { BENCH_TOKEN } from './context.js';
import { nowMs } from './stats.js';

export interface ApiResponse {
  status: number;
  body: Record<string, unknown> & { success?: boolean };
  ms: number;
}

/** One request to the producer, timed from send to the parsed body. */
export async function api(base: string, method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}): Promise<ApiResponse> {
  // Nothing the benchmark asks for takes an hour; a hung request must fail, not hang the run.
  const init = { method, headers: { Authorization: `Bearer ${BENCH_TOKEN}`, ...headers }, signal: AbortSignal.timeout(3_600_000) };
  let start = nowMs();
  let res: Response;
  try {
    res = await fetch(base + path, init);
  } catch (err) {
    // A kept-alive socket the server closed while the benchmark was busy elsewhere: a GET can be
    // sent again on a fresh one (and timed from there).
    if (method !== 'GET') throw err;
    start = nowMs();
    res = await fetch(base + path, init);
  }
  const body = (await res.json()) as ApiResponse['body'];
  return { status: res.status, body, ms: nowMs() - start };
}

export function expectStatus(res: ApiResponse, status: number, what: string): void {
  if (res.status !== status)
    throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
}
