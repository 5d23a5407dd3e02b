import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Job } from 'bullmq';
import { createBackup } from '../../src/shared/backup/backup.js';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { createLogger } from '../../src/shared/runtime/logger.js';
import { startProducer, type RunningProducer } from '../../src/producer/server.js';
import type { Bench, ServiceEnv } from '../lib/context.js';
import { generateDatabase } from '../lib/dbgen.js';
import { api, expectStatus } from '../lib/http.js';
import { WorkerProcess } from '../lib/procs.js';
import { median, percentile, timed } from '../lib/stats.js';
import type { Row } from '../lib/table.js';

const SMALL_DB = 2 * 1024 * 1024;
const WORKER_COUNTS = [1, 2, 4] as const;

/** Latency through the queue, verify throughput by worker count, and listing a large catalog. */
export async function benchQueue(bench: Bench, svc: ServiceEnv): Promise<void> {
  const { config } = svc;
  generateDatabase(config.databasePath, SMALL_DB);
  const log = createLogger({ logLevel: 'silent' }, 'bench');
  const catalog = new Catalog(config.catalogPath);
  const workers: WorkerProcess[] = [];
  let producer: RunningProducer | undefined;
  try {
    bench.progress('queue: starting producer and worker');
    workers.push(await WorkerProcess.start(svc.env));
    producer = await startProducer(config, createLogger(config, 'producer'));
    const url = producer.url;
    const queues = producer.deps.queues;

    // Warm-up: the first job of a process pays for module loading and connections.
    for (let i = 0; i < 3; i++) expectStatus(await api(url, 'POST', '/api/backups'), 201, 'warm-up backup');

    const lat = {
      direct: [] as number[],
      backupP50: [] as number[],
      backupP99: [] as number[],
      backupOverP50: [] as number[],
      backupOverP99: [] as number[],
    };
    const ver = { p50: [] as number[], p99: [] as number[], overP50: [] as number[], overP99: [] as number[] };
    const processing = (job: Job | undefined) => (job?.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : Number.NaN);
    let verifyTarget = 0;
    for (let run = 0; run < bench.opts.runs; run++) {
      bench.progress(`queue latency run ${run + 1}/${bench.opts.runs}`);
      const runStart = performance.now();
      const direct: number[] = [];
      const total: number[] = [];
      const over: number[] = [];
      for (let i = 0; i < bench.opts.requests; i++) {
        direct.push((await timed(() => createBackup({ config, catalog, log }, { type: 'manual', jobId: null }))).ms);
        const res = await api(url, 'POST', '/api/backups');
        expectStatus(res, 201, 'POST /api/backups');
        const id = (res.body.backup as { id: number }).id;
        verifyTarget = id;
        const job = await queues.backup.getJob(catalog.getBackup(id)!.job_id!);
        total.push(res.ms);
        over.push(res.ms - processing(job));
      }
      lat.direct.push(median(direct));
      lat.backupP50.push(percentile(total, 50));
      lat.backupP99.push(percentile(total, 99));
      lat.backupOverP50.push(percentile(over, 50));
      lat.backupOverP99.push(percentile(over, 99));

      const vt: number[] = [];
      const vo: number[] = [];
      for (let i = 0; i < bench.opts.requests; i++) {
        const res = await api(url, 'POST', `/api/backups/${verifyTarget}/verify`, { 'Content-Type': 'application/json' });
        expectStatus(res, 200, 'POST /api/backups/:id/verify');
        if (res.body.valid !== true) throw new Error(`verification failed: ${JSON.stringify(res.body)}`);
        vt.push(res.ms);
        const [job] = await queues.verify.getJobs(['completed'], 0, 0, false);
        vo.push(res.ms - processing(job));
      }
      ver.p50.push(percentile(vt, 50));
      ver.p99.push(percentile(vt, 99));
      ver.overP50.push(percentile(vo, 50));
      ver.overP99.push(percentile(vo, 99));
      bench.progress(
        `  direct ${median(direct).toFixed(0)} ms, POST backup ${median(total).toFixed(0)} ms, verify ${median(vt).toFixed(0)} ms; run took ${((performance.now() - runStart) / 1000).toFixed(1)} s`,
      );
    }
    const section = '6 Queue and API';
    const rows: Row[] = [
      { section, measure: 'small backup, in-process (no queue)', method: 'createBackup median', unit: 'ms', values: lat.direct },
      {
        section,
        measure: 'small backup, request → result',
        method: 'POST /api/backups p50',
        unit: 'ms',
        values: lat.backupP50,
        ratio: { value: median(lat.backupP50) / median(lat.direct), to: 'in-process' },
      },
      { section, measure: 'small backup, request → result', method: 'POST /api/backups p99', unit: 'ms', values: lat.backupP99 },
      { section, measure: 'small backup, queue overhead (request − processor time)', method: 'p50', unit: 'ms', values: lat.backupOverP50 },
      {
        section,
        measure: 'small backup, queue overhead (request − processor time)',
        method: 'p99',
        unit: 'ms',
        values: lat.backupOverP99,
        target: { met: median(lat.backupOverP99) <= 50, text: `≤ 50 ms p99 (is ${median(lat.backupOverP99).toFixed(0)} ms)` },
      },
      { section, measure: 'small verify, request → result', method: 'POST /api/backups/:id/verify p50', unit: 'ms', values: ver.p50 },
      { section, measure: 'small verify, request → result', method: 'POST /api/backups/:id/verify p99', unit: 'ms', values: ver.p99 },
      { section, measure: 'small verify, queue overhead (request − processor time)', method: 'p50', unit: 'ms', values: ver.overP50 },
      { section, measure: 'small verify, queue overhead (request − processor time)', method: 'p99', unit: 'ms', values: ver.overP99 },
    ];
    bench.rows.push(...rows);

    // Many small backups to verify.
    const ids = catalog.completedBackups().map((b) => b.id);
    while (ids.length < bench.opts.verifyJobs) ids.push((await createBackup({ config, catalog, log }, { type: 'manual', jobId: null })).id);
    const batch = ids.slice(0, bench.opts.verifyJobs);
    const throughput = new Map<number, number[]>();
    const done = new Set<string>();
    let failed = 0;
    queues.events.verify.on('completed', ({ jobId }) => done.add(jobId));
    queues.events.verify.on('failed', ({ jobId }) => {
      failed++;
      done.add(jobId);
    });
    for (const count of WORKER_COUNTS) {
      bench.progress(`verify throughput with ${count} worker process(es)`);
      const starting: Promise<WorkerProcess>[] = [];
      while (workers.length + starting.length < count) starting.push(WorkerProcess.start(svc.env));
      workers.push(...(await Promise.all(starting)));
      const per: number[] = [];
      for (let run = 0; run < bench.opts.runs; run++) {
        const start = performance.now();
        const jobIds: string[] = [];
        // Eight requests in flight, as a dashboard or script fanning out would have.
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < batch.length) {
              const id = batch[next++]!;
              const res = await api(url, 'POST', `/api/backups/${id}/verify`, { Prefer: 'respond-async' });
              expectStatus(res, 202, 'POST verify (async)');
              jobIds.push(String(res.body.jobId));
            }
          }),
        );
        while (!jobIds.every((j) => done.has(j))) await new Promise((r) => setTimeout(r, 5));
        per.push(batch.length / ((performance.now() - start) / 1000));
      }
      throughput.set(count, per);
    }
    if (failed) bench.notes.push(`${failed} verify jobs failed during the throughput runs.`);
    const one = median(throughput.get(1)!);
    for (const count of WORKER_COUNTS) {
      const v = throughput.get(count)!;
      bench.rows.push({
        section,
        measure: `verify-job throughput (${batch.length} small backups)`,
        method: `${count} worker process${count > 1 ? 'es' : ''} × concurrency ${config.workerConcurrency}`,
        unit: 'jobs/s',
        values: v,
        ...(count > 1 ? { ratio: { value: median(v) / one, to: '1 worker' } } : {}),
        ...(failed ? { failures: `${failed} failed jobs` } : {}),
      });
    }

    // Listing: fill the catalog with plausible rows, then time GET /api/backups.
    for (const rowsWanted of [10_000, 100_000]) {
      bench.progress(`GET /api/backups with ${rowsWanted} rows`);
      fillCatalog(catalog, config.backupDir, rowsWanted);
      for (let i = 0; i < 20; i++) await api(url, 'GET', '/api/backups');
      const p50: number[] = [];
      const p99: number[] = [];
      for (let run = 0; run < bench.opts.runs; run++) {
        const ms: number[] = [];
        for (let i = 0; i < bench.opts.listRequests; i++) {
          const res = await api(url, 'GET', '/api/backups');
          expectStatus(res, 200, 'GET /api/backups');
          if (res.body.total !== rowsWanted) throw new Error(`expected ${rowsWanted} rows, API says ${String(res.body.total)}`);
          ms.push(res.ms);
        }
        p50.push(percentile(ms, 50));
        p99.push(percentile(ms, 99));
      }
      const label = `GET /api/backups (first page of 100), ${rowsWanted.toLocaleString('en')} catalog rows`;
      bench.rows.push({ section, measure: label, method: `p50 over ${bench.opts.listRequests} requests`, unit: 'ms', values: p50 });
      bench.rows.push({
        section,
        measure: label,
        method: `p99 over ${bench.opts.listRequests} requests`,
        unit: 'ms',
        values: p99,
        ...(rowsWanted === 100_000 ? { target: { met: median(p99) <= 20, text: `≤ 20 ms p99 (is ${median(p99).toFixed(1)} ms)` } } : {}),
      });
    }
  } finally {
    bench.progress('queue: stopping producer and workers');
    await producer?.close();
    await Promise.all(workers.map((w) => w.stop()));
    catalog.close();
  }
}

/** Adds completed and some failed rows until the catalog holds `total`, as years of backups would. */
export function fillCatalog(catalog: Catalog, dir: string, total: number): void {
  const have = catalog.countBackups();
  // A connection of its own: the catalog runs SQL only in its repositories, and none writes years of history at once.
  const db = new Database(catalog.file);
  db.pragma('busy_timeout = 10000');
  const log = db.prepare(
    `INSERT INTO backup_log (backup_type, file_path, file_size_bytes, started_at, completed_at, status, error_message, checksum)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const detail = db.prepare(
    'INSERT INTO backup_detail (backup_id, job_id, compression, page_size, user_version, database_size_bytes) VALUES (?, ?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (let i = have; i < total; i++) {
      const at = new Date(Date.UTC(2020, 0, 1) + i * 3_600_000).toISOString();
      const ok = i % 50 !== 0;
      const id = Number(
        log.run(
          i % 3 ? 'scheduled' : 'manual',
          path.join(dir, `workstation-backup-${at.slice(0, 19).replace(/:/g, '-')}.db`),
          ok ? 1_073_741_824 : null,
          at,
          at,
          ok ? 'completed' : 'failed',
          ok ? null : 'no space left',
          ok ? randomBytes(32).toString('hex') : null,
        ).lastInsertRowid,
      );
      detail.run(id, `filler-${i}`, 'none', 4096, 0, 1_073_741_824);
    }
  })();
  db.close();
}
