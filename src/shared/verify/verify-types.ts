/** What a verification answers: the runbook's checks, each one's outcome, and the whole. */
import type { ReadableCopy } from './readable-copy.js';

export type VerifyMode = 'full' | 'quick';

/**
 * How one verification checks a copy: a `VerifyMode`, or `checksum`, which only a restore asks for,
 * of bytes that passed integrity_check before (see `restoreCheckMode`): the file exists, its SHA-256
 * is the one that passed, and it opens as SQLite; the integrity check is not run again (its answer
 * is a function of those bytes). Recorded as `quick`, its integrity entry saying so.
 */
export type CheckMode = VerifyMode | 'checksum';

export const CHECK_NAMES = ['file_exists', 'checksum', 'opens_as_sqlite', 'integrity'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface CheckResult {
  name: CheckName;
  ok: boolean;
  detail: string;
}

export interface Verification {
  valid: boolean;
  message: string;
  checks: CheckResult[];
}

export type VerifyResult = Verification & {
  copy?: ReadableCopy;
  /** Which copy passed (or, when none did, the primary's). */
  source?: 'primary' | 'mirror';
  /** When the mirror was tried too: what each copy's checks found. */
  copies?: { primary: Verification; mirror: Verification };
};
