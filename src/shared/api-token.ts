import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config.js';

/**
 * The API token: API_TOKEN when set; otherwise the one kept in API_TOKEN_FILE, generated on the
 * first run into a 0600 file, so a first start is usable without printing a secret to the logs.
 */
export function resolveApiToken(config: Config): { token: string; source: 'env' | 'file' | 'generated'; file?: string } {
  if (config.apiToken) return { token: config.apiToken, source: 'env' };
  const file = config.apiTokenFile;
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (token.length >= 16) return { token, source: 'file', file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  try {
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process generated it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: fs.readFileSync(file, 'utf8').trim(), source: 'file', file };
    throw err;
  }
  return { token, source: 'generated', file };
}
