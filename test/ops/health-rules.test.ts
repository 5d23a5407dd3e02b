import { describe, expect, it } from 'vitest';
import { assessHealth, overdueBy, type HealthFacts } from '../../src/producer/health-rules.js';

const now = new Date('2026-01-10T12:00:00Z');
const hours = (n: number) => new Date(now.getTime() - n * 3_600_000);

const healthy: HealthFacts = {
  now,
  redisUp: true,
  database: { reachable: true, journalMode: 'wal', sizeBytes: 10_000 },
  workersAlive: 2,
  autoBackupEnabled: true,
  autoBackupInterval: 3_600_000,
  lastSuccessAt: hours(1.5),
  watchingSince: hours(100),
  freeBytes: 1_000_000,
  neededBytes: 20_000,
  databaseDamage: null,
};

describe('health rules', () => {
  it('are ok when every fact is fine, and one missed run is tolerated', () => {
    expect(assessHealth(healthy)).toEqual({ status: 'ok', problems: [] });
  });

  it('call backups overdue past twice the interval, only with automatic backups on', () => {
    expect(overdueBy({ ...healthy, lastSuccessAt: hours(2.5) })).toBe(0.5 * 3_600_000);
    expect(assessHealth({ ...healthy, lastSuccessAt: hours(2.5) }).status).toBe('degraded');
    expect(assessHealth({ ...healthy, lastSuccessAt: hours(2.5), autoBackupEnabled: false }).status).toBe('ok');
  });

  it('count from the start of watching when no backup ever succeeded', () => {
    expect(assessHealth({ ...healthy, lastSuccessAt: null, watchingSince: hours(1) }).status).toBe('ok');
    const late = assessHealth({ ...healthy, lastSuccessAt: null, watchingSince: hours(3) });
    expect(late.problems).toEqual(['no backup has succeeded in 3 h, while automatic backups run every 60 min']);
  });

  it('are degraded when free space is below what the next backup needs', () => {
    const r = assessHealth({ ...healthy, freeBytes: 5 * 1024 * 1024, neededBytes: 6 * 1024 * 1024 });
    expect(r).toEqual({
      status: 'degraded',
      problems: ['free space in BACKUP_DIR (5.0 MiB) is below what the next backup needs (6.0 MiB)'],
    });
  });

  it('are degraded, first of all, while the live database is known to be damaged', () => {
    const damage = 'the live database is damaged: quick_check of /db reports btreeInitPage() returns error code 11';
    expect(assessHealth({ ...healthy, workersAlive: 0, databaseDamage: damage })).toEqual({
      status: 'degraded',
      problems: [damage, 'no worker process is alive: queued jobs will wait'],
    });
  });

  it('are degraded when BACKUP_DIR cannot be written, and not when its probe did not answer', () => {
    expect(assessHealth({ ...healthy, backupDirWritable: false })).toEqual({
      status: 'degraded',
      problems: ['BACKUP_DIR cannot be written: no backup can be taken until it is fixed'],
    });
    expect(assessHealth({ ...healthy, backupDirWritable: null }).status).toBe('ok');
    expect(assessHealth({ ...healthy, backupDirWritable: true }).status).toBe('ok');
  });

  it('are degraded without a worker or a readable database, and down without Redis whatever else holds', () => {
    expect(assessHealth({ ...healthy, workersAlive: 0 }).status).toBe('degraded');
    expect(assessHealth({ ...healthy, database: { reachable: false, journalMode: null, sizeBytes: null } }).status).toBe('degraded');
    const down = assessHealth({ ...healthy, redisUp: false, workersAlive: null });
    expect(down.status).toBe('down');
    expect(down.problems).toHaveLength(1);
  });

  it('are degraded while a restore from the mirror alone is too far behind, after the WAL archive problem', () => {
    const offsite =
      'a restore from the mirror alone reaches 2026-01-10T11:58:00.000Z, 120 s ago (OFFSITE_LAG_ALERT is 60 s): 3 segments not copied';
    const wal = 'WAL archiving lags 12 s behind the database (more than 10 intervals of 1000 ms)';
    expect(assessHealth({ ...healthy, offsiteProblem: offsite })).toEqual({ status: 'degraded', problems: [offsite] });
    expect(assessHealth({ ...healthy, walProblem: wal, offsiteProblem: offsite }).problems).toEqual([wal, offsite]);
    expect(assessHealth({ ...healthy, offsiteProblem: null }).status).toBe('ok');
  });
});
