import { describe, expect, it } from 'vitest';
import { restoreJobOfSafety, safetyJobId } from '../../src/shared/jobs/job-ids.js';

describe('job ids that name another job', () => {
  it("lead from a restore's safety backup back to the restore, for queue and CLI job ids alike", () => {
    for (const restore of ['42', 'restore-7', 'cli:host-1:1234:restore:2026-01-01T00-00-00:abcdef']) {
      expect(restoreJobOfSafety(safetyJobId(restore))).toBe(restore);
    }
  });

  it('name no restore for any other job id', () => {
    for (const other of ['42', 'repeat:backup:1700000000000', 'cli:host-1:1234:backup:2026-01-01T00-00-00:abcdef', 'safety', ':safety-1']) {
      expect(restoreJobOfSafety(other)).toBeNull();
    }
  });
});
