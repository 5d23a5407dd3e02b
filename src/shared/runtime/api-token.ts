import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config.js';
import { codeOf, messageOf } from '../domain/errors.js';
import { tempPath } from './files.js';

/** The shortest token accepted anywhere: API_TOKEN, METRICS_TOKEN, the token file. */
export const MIN_TOKEN_LENGTH = 16;

/** A token file the producer cannot use; the message is one line naming the file and what to do. */
export class ApiTokenError extends Error {
  override name = 'ApiTokenError';
}

export interface ResolvedToken {
  token: string;
  source: 'env' | 'file' | 'generated';
  file?: string;
  /** What was wrong with the file and has been put right (an empty file replaced, a loose mode tightened). */
  warnings: string[];
}

/** A full disk or a crash can leave the file empty, or filled with NUL bytes on some filesystems. */
const BLANK_EDGES = /^[\s\0]+|[\s\0]+$/g;
/** Printable ASCII without spaces: what fits in a Bearer header and a Basic password alike. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/**
 * The API token: API_TOKEN when set; otherwise the one kept in API_TOKEN_FILE, generated on the
 * first run into a 0600 file, so a first start is usable without printing a secret to the logs.
 *
 * An empty (or blank) file is replaced by a fresh token: that is what a full disk leaves behind, and
 * taking it as the token would open the API to an empty password. A file holding a token that is too
 * short or has spaces in it was written by a person, so it is refused rather than overwritten.
 */
export function resolveApiToken(config: Pick<Config, 'apiToken' | 'apiTokenFile'>): ResolvedToken {
  if (config.apiToken) return { token: config.apiToken, source: 'env', warnings: [] };
  const file = config.apiTokenFile;
  const warnings: string[] = [];
  // Another producer starting on the same directory may be generating or replacing the file at the
  // same moment; each round re-reads what is there.
  for (let round = 0; round < 5; round++) {
    const content = readIfPresent(file);
    if (content === null) {
      const token = generateInto(file);
      if (token) return { token, source: 'generated', file, warnings };
      continue;
    }
    const token = content.replace(BLANK_EDGES, '');
    if (token === '') {
      if (setAsideBlank(file))
        warnings.push(`API token file ${file} was empty (a full disk leaves it so): a new token was generated into it`);
      continue;
    }
    if (!TOKEN_CHARS.test(token)) {
      throw new ApiTokenError(
        `API token file ${file} holds spaces or unprintable characters: write one token of printable characters (openssl rand -base64 32), or delete the file to have one generated`,
      );
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new ApiTokenError(
        `API token file ${file} holds a token of ${token.length} characters, fewer than ${MIN_TOKEN_LENGTH}: write a longer one (openssl rand -base64 32), or delete the file to have one generated`,
      );
    }
    const loose = tightenMode(file);
    if (loose) warnings.push(loose);
    return { token, source: 'file', file, warnings };
  }
  throw new ApiTokenError(`API token file ${file} kept changing while it was read: is another producer replacing it?`);
}

function readIfPresent(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return null;
    throw new ApiTokenError(`cannot read API token file ${file}: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * Writes a new token beside the file and links it into place: the name appears only with the whole
 * token in it (a full disk fails the write, never leaves an empty token file), and never replaces
 * a file another process made meanwhile. Returns null when one did; the caller reads theirs.
 */
function generateInto(file: string): string | null {
  const dir = path.dirname(file);
  const token = randomBytes(32).toString('base64url');
  let temp: string | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    temp = tempPath(dir, 'api-token');
    const fd = fs.openSync(temp, 'wx', 0o600);
    try {
      fs.writeSync(fd, `${token}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(temp, file);
    } catch (err) {
      if (codeOf(err) === 'EEXIST') return null;
      throw err;
    }
    syncDir(dir);
    return token;
  } catch (err) {
    throw new ApiTokenError(`could not write a new API token into ${file}: ${messageOf(err)}`, { cause: err });
  } finally {
    if (temp) fs.rmSync(temp, { force: true });
  }
}

/**
 * Moves a blank token file out of the way so a new one can be linked in. Moving (not deleting) lets
 * this process see what it took: if another producer had already put a good token there, it goes
 * back. Returns whether a blank file was removed.
 */
function setAsideBlank(file: string): boolean {
  const aside = tempPath(path.dirname(file), 'blank-api-token');
  try {
    fs.renameSync(file, aside);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return false;
    throw new ApiTokenError(`API token file ${file} is empty and could not be replaced: ${messageOf(err)}`, { cause: err });
  }
  try {
    if (fs.readFileSync(aside, 'utf8').replace(BLANK_EDGES, '') === '') return true;
    try {
      fs.linkSync(aside, file);
    } catch (err) {
      if (codeOf(err) !== 'EEXIST') throw err;
    }
    return false;
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

/** A token file others can read is made 0600; returns the warning to log, if there is one. */
function tightenMode(file: string): string | undefined {
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  const shown = mode.toString(8).padStart(4, '0');
  try {
    fs.chmodSync(file, 0o600);
    return `API token file ${file} was readable by other users (mode ${shown}): set it to 0600`;
  } catch (err) {
    return `API token file ${file} is readable by other users (mode ${shown}) and could not be set to 0600 (${messageOf(err)}): anyone who can read it can restore the database`;
  }
}

function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems cannot sync a directory; the token file is complete either way.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
