import { codeOf } from '../domain/errors.js';
import { StorageError } from './storage.js';

/** What the SDK's errors carry, as far as the wording needs. */
export interface SdkError {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export const NOT_FOUND = new Set(['NotFound', 'NoSuchKey']);
const DENIED = new Set(['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'EPIPE']);

/** The bucket an error came from, for its wording. */
export interface S3Place {
  bucket: string;
  location: string;
  endpoint: string;
  timeoutMs: number;
}

/** An SDK error as a sentence a person can act on; never a secret, never a bare stack. */
export function explainS3Error(err: unknown, doing: string, { bucket, location, endpoint, timeoutMs }: S3Place): StorageError {
  if (err instanceof StorageError) return err;
  const e = (err ?? {}) as SdkError;
  const code = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  // A network error the HTTP handler wraps carries the errno on its `cause`.
  const errno = codeOf(err, { viaCause: true }) ?? '';
  let message: string;
  if (code === 'AbortError' || (err as Error)?.name === 'AbortError') message = `${doing} was cancelled`;
  else if (code === 'NoSuchBucket') message = `bucket ${bucket} does not exist`;
  else if (DENIED.has(code) || status === 403)
    message = `access denied for ${location} (check AWS_ACCESS_KEY_ID)${DENIED.has(code) && code !== 'AccessDenied' ? `: ${code}` : ''}`;
  else if (code === 'CredentialsProviderError' || (/credentials/i.test(e.message ?? '') && !status))
    message = `no AWS credentials for ${location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or an instance role`;
  else if (UNREACHABLE.has(errno) || UNREACHABLE.has(code)) message = `endpoint ${endpoint} unreachable (${errno || code})`;
  else if (code === 'TimeoutError' || code === 'RequestTimeout' || errno === 'ETIMEDOUT' || /timed? ?out/i.test(e.message ?? ''))
    message = `endpoint ${endpoint} did not answer within ${timeoutMs} ms (BACKUP_MIRROR_TIMEOUT)`;
  else if (status === 503 || code === 'SlowDown' || code === 'ServiceUnavailable')
    message = `${location} is unavailable (${status ?? ''} ${code}): try again later`.replace('( ', '(');
  else if (/region/i.test(e.message ?? '') && !status) message = `no region for ${location}: set AWS_REGION`;
  else message = `${location}: ${[status, code].filter(Boolean).join(' ')}${e.message && e.message !== code ? ` ${e.message}` : ''}`.trim();
  return new StorageError(`${message} (while ${doing})`, { cause: err });
}

/** The S3 error name (`NoSuchKey`, `AccessDenied`) of an SDK error, or of the one a StorageError wraps. */
export function s3NameOf(err: unknown): string {
  const cause = (err as { cause?: SdkError }).cause ?? (err as SdkError);
  return cause?.Code ?? cause?.name ?? '';
}
