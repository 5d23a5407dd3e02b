import { Router } from 'express';
import type { Config } from '../../shared/runtime/config.js';
import { AppError } from '../../shared/domain/errors.js';
import { storageHealth, type StorageHealth } from '../../shared/storage/health.js';
import type { BackupStorage } from '../../shared/storage/storage.js';
import { storesOf } from '../../shared/storage/registry.js';
import { mirrorOutage } from '../../shared/storage/mirror.js';
import type { Catalog } from '../../shared/catalog/catalog.js';
import { bearerOutcome } from '../auth.js';
import type { ProducerDeps } from '../deps.js';
import { observe } from '../health-facts.js';
import { walStatus } from '../../shared/wal/wal-health.js';
import { lastDrillSummary } from '../../shared/wal/drill.js';
import { recoveryWindow } from '../../shared/wal/window.js';
import { offsiteProblem, offsiteState } from '../../shared/wal/offsite.js';
import { assessHealth, overdueBy } from '../health-rules.js';
import { cachedProbe, CachedProbe, PROBE_LIMITS } from '../probe-cache.js';

/** A store whose probe did not answer in time: neither writable nor not, as far as anyone knows. */
type StorageState = {
  primary: Omit<StorageHealth['primary'], 'writable'> & { writable: boolean | null };
  mirror:
    | { configured: false }
    | (Omit<Extract<StorageHealth['mirror'], { configured: true }>, 'writable' | 'copies' | 'missing' | 'failed'> & {
        writable: boolean | null;
        copies: number | null;
        missing: number | null;
        failed: Extract<StorageHealth['mirror'], { configured: true }>['failed'];
      });
};

/** The sentence for a failed last restore drill: a restore from the archive would fail or be wrong. */
const drillProblem = (last: ReturnType<typeof lastDrillSummary>) =>
  last && !last.ok ? `the last restore drill (${last.at}) failed: ${last.reason ?? 'no reason recorded'}` : null;

const noAnswer = (ms: number) => `no answer within ${ms} ms`;

/**
 * How long a bucket's answer that it is reachable is reused. Each probe of a bucket is a request
 * it bills (HeadBucket), and `/health` is polled by orchestrators and the operator page every few
 * seconds: at the disks' 5 s that was up to 17,280 requests a day for one field, where an idle
 * database's archive costs none. At 30 minutes it is at most 48 a day however often `/health` is
 * asked. Trouble is seen without waiting for it: while the catalog shows copies to the mirror
 * failing or the WAL archive's segments waiting longer than OFFSITE_LAG_ALERT, and after a probe
 * that failed, the bucket is probed again every 5 s as a disk is.
 */
export const BUCKET_PROBE_TTL_MS = 30 * 60_000;

/** Whether the catalog shows the mirror not keeping up: its copies failing, or a segment waiting too long for it. */
function mirrorBehind(config: Config, catalog: Catalog, now = Date.now()): boolean {
  if (mirrorOutage(catalog)) return true;
  const oldest = catalog.wal.unmirroredSummary().oldestReadAt;
  return oldest !== null && now - Date.parse(oldest) > config.offsiteLagAlert * 1_000;
}

const bucketProbes = new WeakMap<Config, CachedProbe<{ ok: boolean; detail: string }>>();

/** The probe of a mirror that is a bucket (not a directory): a good answer kept BUCKET_PROBE_TTL_MS while nothing says otherwise. */
function bucketProbe(deps: ProducerDeps, store: BackupStorage): CachedProbe<{ ok: boolean; detail: string }> {
  let probe = bucketProbes.get(deps.config);
  if (!probe) {
    // The answer says when it was taken: it may be half an hour old.
    const look = async () => {
      const probed = await store.probe();
      return probed.ok ? { ...probed, detail: `${probed.detail} (checked ${new Date().toISOString()})` } : probed;
    };
    probe = new CachedProbe(look, {
      ...PROBE_LIMITS,
      keepMs: (value) => (value.ok && !mirrorBehind(deps.config, deps.catalog) ? BUCKET_PROBE_TTL_MS : PROBE_LIMITS.ttlMs),
    });
    bucketProbes.set(deps.config, probe);
  }
  return probe;
}

const isBucket = (store: BackupStorage) => store.location.startsWith('s3://');

/**
 * Each store's probe on its own, so a hung mirror is told apart from the primary; around them all,
 * the device lookups, which hang too when BACKUP_DIR's disk does.
 */
const storageProbes = new WeakMap<Config, CachedProbe<StorageState>>();

function storageProbe(deps: ProducerDeps): CachedProbe<StorageState> {
  let probe = storageProbes.get(deps.config);
  if (!probe) {
    probe = new CachedProbe(
      async () => {
        const unanswered = new Set<string>();
        const health = await storageHealth(deps.config, deps.catalog, async (store: BackupStorage) => {
          const probed = await (
            store.role === 'mirror' && isBucket(store)
              ? bucketProbe(deps, store)
              : cachedProbe(`store\0${store.role}\0${store.location}`, () => store.probe())
          ).read();
          if (probed.answered) return probed.value;
          unanswered.add(store.role);
          return { ok: false, detail: noAnswer(probed.limitMs) };
        });
        const m = health.mirror;
        return {
          primary: { ...health.primary, writable: unanswered.has('primary') ? null : health.primary.writable },
          mirror: m.configured ? { ...m, writable: unanswered.has('mirror') ? null : m.writable } : m,
        };
      },
      // Longer than each store's own limit, so that a hung store is reported as such.
      { ttlMs: PROBE_LIMITS.ttlMs, timeoutMs: PROBE_LIMITS.timeoutMs + 500 },
    );
    storageProbes.set(deps.config, probe);
  }
  return probe;
}

async function storageState(deps: ProducerDeps): Promise<StorageState> {
  const probed = await storageProbe(deps).read();
  if (probed.answered) return probed.value;
  const detail = noAnswer(probed.limitMs);
  const { mirror } = storesOf(deps.config);
  return {
    primary: { writable: null, detail, sameDeviceAsDatabase: null },
    mirror: mirror
      ? { configured: true, location: mirror.location, writable: null, detail, copies: null, missing: null, failed: [], outage: null }
      : { configured: false },
  };
}

/** The sentence for copies to the mirror that keep failing, or null while they succeed. */
function mirrorTrouble(m: Extract<StorageState['mirror'], { configured: true }>): string | null {
  if (!m.outage) return null;
  const missing = m.missing === null ? '' : ` (${m.missing} backup${m.missing === 1 ? '' : 's'} not copied yet)`;
  return `copies to the mirror ${m.location} have been failing since ${m.outage.since}${missing}: ${m.outage.reason}`;
}

/**
 * `GET /health`. Without a token, states only — what a load balancer or an uptime check needs,
 * and nothing about the machine's layout: no paths, error messages, sizes or counts. With the API
 * token (`Authorization: Bearer`), everything an operator needs: the problems as sentences, sizes,
 * free space, the last backup, the statistics and each store's probe detail (errors with paths).
 * A wrong token is a 401, not the short answer: an operator who sent one would otherwise wonder
 * where the details went.
 *
 * 503 only when `down`, so a container healthcheck restarts the producer for a lost Redis but not
 * for a late backup, which a restart would not fix; `degraded` says what needs a person. The disk
 * probes are cached and bounded (probe-cache.ts): a flood of requests writes one probe file, and
 * a hung disk makes the answer "unknown" within seconds instead of never.
 */
export function healthRouter(deps: ProducerDeps): Router {
  const router = Router();
  router.get('/', async (req, res, next) => {
    const who = bearerOutcome([deps.apiToken], req.headers.authorization);
    if (who === 'invalid') {
      res.setHeader('WWW-Authenticate', 'Bearer realm="workstation-backup"');
      next(new AppError('unauthorized', 'invalid API token', true));
      return;
    }
    const [{ facts, lastBackup, statistics }, storage] = await Promise.all([observe(deps), storageState(deps)]);
    const wal = walStatus(deps.config, deps.catalog);
    const lastDrill = lastDrillSummary(deps.catalog);
    const window = recoveryWindow(deps.catalog);
    const offsite = offsiteState(deps.config, deps.catalog, facts.now.getTime(), window);
    const { status, problems } = assessHealth({
      ...facts,
      backupDirWritable: storage.primary.writable,
      mirrorOutage: storage.mirror.configured ? mirrorTrouble(storage.mirror) : null,
      walProblem: wal.problem,
      offsiteProblem: offsiteProblem(offsite, window, facts.now.getTime()),
      drillProblem: drillProblem(lastDrill),
    });
    const late = overdueBy(facts);
    res.status(status === 'down' ? 503 : 200);
    if (who === 'missing') {
      const m = storage.mirror;
      res.json({
        status,
        timestamp: facts.now.toISOString(),
        redis: { reachable: facts.redisUp },
        database: { reachable: facts.database.reachable },
        workers: { anyAlive: facts.workersAlive === null ? null : facts.workersAlive > 0 },
        backups: { overdue: late !== null },
        disk: { enoughForNextBackup: facts.freeBytes === null || facts.neededBytes === null ? null : facts.freeBytes >= facts.neededBytes },
        storage: {
          primary: { writable: storage.primary.writable },
          mirror: m.configured ? { configured: true, writable: m.writable, upToDate: m.missing === null ? null : m.missing === 0 } : m,
        },
        wal: { enabled: wal.enabled, running: wal.running, ok: wal.problem === null },
      });
      return;
    }
    res.json({
      status,
      problems,
      timestamp: facts.now.toISOString(),
      redis: { reachable: facts.redisUp },
      database: { reachable: facts.database.reachable, journalMode: facts.database.journalMode, sizeBytes: facts.database.sizeBytes },
      workers: { alive: facts.workersAlive },
      disk: { freeBytes: facts.freeBytes, neededForNextBackup: facts.neededBytes },
      backups: {
        autoBackupEnabled: facts.autoBackupEnabled,
        autoBackupInterval: facts.autoBackupInterval,
        lastSuccessfulBackup: facts.lastSuccessAt?.toISOString() ?? null,
        lastSuccessfulBackupAgeSeconds: facts.lastSuccessAt
          ? Math.round((facts.now.getTime() - facts.lastSuccessAt.getTime()) / 1_000)
          : null,
        lastBackupSize: lastBackup?.file_size_bytes ?? null,
        overdue: late !== null,
        failedBackups: statistics.failedBackups,
        statistics,
      },
      storage,
      wal: {
        ...wal,
        problem: undefined,
        window: { earliest: window.earliest, latest: window.latest, generations: window.generations.length },
        offsite,
      },
      // The measured restore time (RTO) of the last restore drill, and whether it passed.
      drills: { last: lastDrill },
    });
  });
  return router;
}
