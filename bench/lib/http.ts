import { BENCH_TOKEN } from './context.js';
import { nowMs } from './stats.js';

export interface ApiResponse {
  status: number;
  body: Record<string, unknown> & { success?: boolean };
  ms: number;
}

/** One request to the producer, timed from send to the parsed body. */
export async function api(base: string, method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}): Promise<ApiResponse> {
  const start = nowMs();
  const res = await fetch(base + path, { method, headers: { Authorization: `Bearer ${BENCH_TOKEN}`, ...headers } });
  const body = (await res.json()) as ApiResponse['body'];
  return { status: res.status, body, ms: nowMs() - start };
}

export function expectStatus(res: ApiResponse, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
}
