/**
 * Requests the service sends its bucket (the mirror) a day, in steady state: what a user pays for
 * besides storage. A real worker process and producer with WAL archiving on and an s3rver bucket as
 * the mirror behind a recording proxy, every interval at its default (WAL_ARCHIVE_INTERVAL and
 * WAL_MIRROR_INTERVAL 1 s). The generation's snapshot is a backup job the archiver asks for itself,
 * so AUTO_BACKUP stays at its default (off). Once that snapshot's copy is in the bucket, three loads
 * run M minutes each: idle (no writer), one commit a second, and a commit every 5 ms (200 a second
 * at most). Each request is counted by kind (PUT with the multipart calls, GET, HEAD, LIST, DELETE,
 * other) and by what it is for, and extrapolated to a day (× 1440 / minutes measured).
 *
 * `/health` is polled once a minute through the producer during each load, as an orchestrator
 * would. Its bucket requests (the mirror's probe, a HeadBucket) are told apart by time: those
 * recorded while a `/health` call was in flight. Their number depends on the operator's polling,
 * so they are reported on their own, beside the archive's and the backups'.
 *
 * A pack upload is told apart from compaction's (bucket-compact.ts): one that begins past every
 * segment sent before is a mirror pass's, one that covers segments sent already is a merge, and a
 * GET, HEAD or DELETE of a pack is compaction's (nothing else reads packs here).
 *
 * What a few minutes cannot show, and the report adds from the code: the daily rollover (a new
 * generation with its snapshot backup: about what the start-up costs, reported as such);
 * retention, which deletes each pack and description WAL_RETENTION (7 days) after its generation
 * ended; and of compaction (a run every 2 minutes, the first 2 minutes after the mirror loop
 * starts, merging closed UTC minutes, ten minutes, hours), the parts' deletions 10 minutes after
 * their merge and the ten-minute and hour merges: to see those, run each load 70 minutes or more.
 *
 *   node --import tsx bench/bucket-requests.ts [--minutes M] [--json FILE]
 *   node --import tsx bench/bucket-requests.ts --render FILE   (the report of a run written with --json)
 *
 * Needs Redis on 127.0.0.1:6379, like the tests. Never part of `npm test`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { BUCKET_PROBE_TTL_MS } from '../src/producer/routes/health.js';
import { MIRROR } from '../src/shared/storage/mirror.js';
import { parsePackName } from '../src/shared/wal/bucket-format.js';
import { waitUntil } from '../test/helpers/env.js';
import { S3Server } from '../test/helpers/s3.js';
import { startWalStack, stopWalStack, type WalStack } from '../test/helpers/wal-stack.js';
import { startWalWriter, type WalWriter } from '../test/helpers/wal-writer.js';
import { describeMachine } from './lib/machine.js';

const KINDS = ['PUT', 'GET', 'HEAD', 'LIST', 'DELETE', 'other'] as const;
type Kind = (typeof KINDS)[number];
type Counts = Record<Kind, number> & { total: number };

const PREFIX = 'workstation';
const HEALTH_EVERY_MS = 60_000;
const DAY_MS = 86_400_000;

function options() {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '3' },
      json: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'node --import tsx bench/bucket-requests.ts [--minutes M] [--json FILE] | --render FILE',
        '  --minutes  minutes per load (default 3): idle, 1 commit/s, 200 commits/s',
        '  --json     also write what was measured to FILE',
        '  --render   print the report of a run written with --json again, measuring nothing',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const minutes = Number(values.minutes);
  if (!Number.isFinite(minutes) || minutes < 1) throw new Error(`--minutes must be a number ≥ 1, got ${values.minutes}`);
  return { minutes, json: values.json, rerender: values.render };
}

/** The kind of request a recorded `METHOD url` line is, as a bucket bills it. */
export function kindOf(line: string, bucket: string): Kind {
  const [method = '', url = ''] = line.split(' ');
  const q = url.indexOf('?');
  const query = q < 0 ? '' : url.slice(q + 1);
  const params = new Set(query.split('&').map((p) => p.split('=')[0]));
  const bucketItself = new RegExp(`^/${bucket}/?$`).test(q < 0 ? url : url.slice(0, q));
  if (method === 'PUT') return 'PUT'; // PutObject, UploadPart
  if (method === 'POST' && (params.has('uploads') || params.has('uploadId'))) return 'PUT'; // CreateMultipartUpload, CompleteMultipartUpload
  if (method === 'GET') {
    if (params.has('list-type') || params.has('prefix') || (bucketItself && !params.has('uploadId'))) return 'LIST';
    return 'GET';
  }
  if (method === 'HEAD') return 'HEAD';
  if (method === 'DELETE') return 'DELETE';
  return 'other';
}

/** What a request is for, from its key: a pack, a generation's description, a backup, its manifest, the bucket's probe. */
export function purposeOf(line: string, bucket: string): string {
  const url = line.split(' ')[1] ?? '';
  const key = decodeURIComponent(url.split('?')[0]!.replace(new RegExp(`^/${bucket}/?`), ''));
  if (!key) {
    const prefix = /[?&]prefix=([^&]*)/.exec(url)?.[1];
    return kindOf(line, bucket) === 'LIST' ? `listing ${decodeURIComponent(prefix ?? '')}` : 'bucket itself (the HeadBucket probe)';
  }
  const name = key.split('/').pop()!;
  if (name.startsWith('pack-')) return 'WAL pack';
  if (name.startsWith('generation-')) return 'generation description';
  if (name.endsWith('.manifest.json')) return 'backup manifest';
  if (name.startsWith('wal-')) return 'WAL segment (one object each)';
  if (name.includes('backup')) return 'backup file';
  return `other (${name})`;
}

function count(lines: string[], bucket: string): Counts {
  const counts = { PUT: 0, GET: 0, HEAD: 0, LIST: 0, DELETE: 0, other: 0, total: 0 };
  for (const l of lines) {
    counts[kindOf(l, bucket)]++;
    counts.total++;
  }
  return counts;
}

export const PASS_PACK = 'WAL pack (a mirror pass)';

/**
 * Labels the recorded requests in order, as `purposeOf` does, telling a pack a mirror pass sends
 * (it begins past every segment of its generation sent before) from compaction's merge (it covers
 * segments sent already) and from compaction's reads and deletions of the parts.
 */
export class Labeller {
  readonly labels: string[] = [];
  readonly #sent = new Map<number, number>();

  constructor(
    private readonly bucket: string,
    private readonly requests: string[],
  ) {}

  /** The labels of the first `n` requests. */
  upTo(n: number): string[] {
    while (this.labels.length < n) this.labels.push(this.label(this.requests[this.labels.length]!));
    return this.labels;
  }

  private label(line: string): string {
    const purpose = purposeOf(line, this.bucket);
    if (purpose !== 'WAL pack') return purpose;
    const kind = kindOf(line, this.bucket);
    if (kind === 'DELETE') return 'WAL pack (compaction deletes a part)';
    if (kind !== 'PUT') return 'WAL pack (compaction reads a part or its merge)';
    const pack = parsePackName(decodeURIComponent(line.split(' ')[1]!.split('?')[0]!).split('/').pop()!);
    if (!pack) return purpose;
    const sent = this.#sent.get(pack.generation) ?? 0;
    if (pack.firstSeq <= sent) return 'WAL pack (compaction uploads a merge)';
    this.#sent.set(pack.generation, pack.lastSeq);
    return PASS_PACK;
  }
}

function purposes(lines: string[], labels: string[], bucket: string): Record<string, number> {
  const by: Record<string, number> = {};
  lines.forEach((l, i) => {
    const key = `${kindOf(l, bucket)} ${labels[i]}`;
    by[key] = (by[key] ?? 0) + 1;
  });
  return by;
}

const perDay = (n: number, ms: number) => Math.round((n * DAY_MS) / ms);
const minus = (a: Counts, b: Counts): Counts =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof Counts] - b[k as keyof Counts]])) as Counts;

interface LoadResult {
  load: string;
  everyMs: number | null;
  ms: number;
  commits: number;
  segments: number;
  /** Bytes of those segments, as stored (what a pass uploads, and compaction reads and uploads again). */
  segmentBytes?: number;
  /** Packs the mirror passes sent (compaction's merges apart). */
  packs: number;
  healthPolls: number;
  /** Every request in the window. */
  all: Counts;
  /** Those recorded while a /health call was in flight. */
  health: Counts;
  /** The rest: the archive, the backups. */
  archive: Counts;
  purposes: Record<string, number>;
  /** The mirror passes' pack PUTs per WAL_MIRROR_INTERVAL, on average, and the most seen in any one interval. */
  packPutsPerInterval: { mean: number; max: number };
}

/**
 * The time each request was recorded, to the poll's resolution: the proxy keeps only the lines,
 * so a timer stamps the new ones every 20 ms.
 */
function stampRequests(s3: S3Server): { stamps: number[]; stop(): void } {
  const stamps: number[] = [];
  const tick = () => {
    const now = Date.now();
    while (stamps.length < s3.requests.length) stamps.push(now);
  };
  const timer = setInterval(tick, 20);
  return {
    stamps,
    stop() {
      tick();
      clearInterval(timer);
    },
  };
}

function progress(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function runLoad(
  stack: WalStack,
  s3: S3Server,
  recorded: { stamps: number[]; labeller: Labeller },
  load: { name: string; everyMs: number | null },
  ms: number,
): Promise<LoadResult> {
  const { catalog } = stack;
  const generation = catalog.wal.openGeneration()!;
  const lastSeq = catalog.wal.segments(generation.id).at(-1)?.seq ?? 0;
  let writer: WalWriter | undefined;
  if (load.everyMs !== null) writer = await startWalWriter(stack.box.config.databasePath, { everyMs: load.everyMs });
  const from = s3.requests.length;
  const started = Date.now();
  const healthLines: string[] = [];
  let polls = 0;
  for (let at = started; at < started + ms; at += HEALTH_EVERY_MS) {
    await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
    const before = s3.requests.length;
    // No token, as an orchestrator's check: the mirror is probed the same either way.
    const res = await fetch(`${stack.producer.url}/health`);
    await res.arrayBuffer();
    polls++;
    healthLines.push(...s3.requests.slice(before));
  }
  await new Promise((r) => setTimeout(r, Math.max(0, started + ms - Date.now())));
  const to = s3.requests.length;
  const elapsed = Date.now() - started;
  const summary = writer ? await writer.stop() : undefined;
  const lines = s3.requests.slice(from, to);
  const bucket = s3.bucket;
  const all = count(lines, bucket);
  // Only what /health itself sends: a HEAD of the bucket (a pack PUT may land in the same moment).
  const health = count(
    healthLines.filter((l) => kindOf(l, bucket) === 'HEAD' && purposeOf(l, bucket).startsWith('bucket')),
    bucket,
  );
  const interval = stack.box.config.walMirrorInterval;
  const labels = recorded.labeller.upTo(to).slice(from, to);
  const perInterval = new Map<number, number>();
  labels.forEach((label, i) => {
    if (label !== PASS_PACK) return;
    const slot = Math.floor((recorded.stamps[from + i]! - started) / interval);
    perInterval.set(slot, (perInterval.get(slot) ?? 0) + 1);
  });
  const added = catalog.wal.segments(generation.id).filter((s) => s.seq > lastSeq);
  const packPuts = [...perInterval.values()].reduce((a, b) => a + b, 0);
  return {
    load: load.name,
    everyMs: load.everyMs,
    ms: elapsed,
    commits: summary?.commits ?? 0,
    segments: added.length,
    segmentBytes: added.reduce((n, s) => n + s.size_bytes, 0),
    packs: labels.filter((l) => l === PASS_PACK).length,
    healthPolls: polls,
    all,
    health,
    archive: minus(all, health),
    purposes: purposes(lines, labels, bucket),
    packPutsPerInterval: { mean: packPuts / (elapsed / interval), max: Math.max(0, ...perInterval.values()) },
  };
}

/** What a run measured: what `--json` writes and `--render` prints again. */
export interface BucketRequestsRun {
  at: string;
  /** The commit measured, and the files changed in the working tree beside it (the processes load what is on disk). */
  code?: { commit: string; changed: string[] };
  minutes: number;
  machine: string[];
  intervals: { walArchive: number; walMirror: number };
  autoBackupEnabled?: boolean;
  /** Everything until steady state: the catalog built at the first start, the first generation, its snapshot backup. */
  startup: { requests: number; counts: Counts; purposes: Record<string, number> };
  /** While a writer started or stopped, outside every window. */
  betweenLoads: number;
  loads: (LoadResult & { perDay: { all: number; withoutHealth: number; byKind: Record<Kind, number> } })[];
  health: { pollEveryMs: number; bucketProbeTtlMs: number; perDayAtMost: number };
}

const listOf = (by: Record<string, number>) =>
  Object.entries(by)
    .map(([k, n]) => `${k} ×${n}`)
    .join(', ') || 'nothing';

/** The report, in markdown: the table, what each load sent, and the targets. */
export function render(run: BucketRequestsRun, command: string): string[] {
  const { loads, startup, health } = run;
  const interval = run.intervals.walMirror;
  const fmt = (n: number) => n.toLocaleString('en');
  const healthDay = health.perDayAtMost;
  // A rollover begins a generation as the start-up did, without the listing only a first start
  // without a catalog sends, and also writes the ended generation's description once more.
  const rollover = startup.requests - startup.counts.LIST + 1;
  const head = [
    'Load',
    'Commits/s',
    ...KINDS,
    'Total',
    'By /health (polls)',
    'Per day without /health',
    'Per day, /health polled each minute',
  ];
  const out = [
    `# Bucket requests per day (${run.at.slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `Command: \`${command}\``,
    '',
    ...run.machine.map((l) => `- ${l}`),
    `- WAL_ARCHIVE_INTERVAL ${run.intervals.walArchive} ms, WAL_MIRROR_INTERVAL ${interval} ms, AUTO_BACKUP_ENABLED ${run.autoBackupEnabled ?? false} (the snapshot is the archiver's own backup job); the mirror is s3rver behind a recording proxy`,
    '',
    `Requests counted in ${run.minutes} min per load; per day = count × 1440 / minutes measured. /health's own requests (a HeadBucket while a call was in flight) are counted apart: a good probe is kept ${health.bucketProbeTtlMs / 60_000} min, so polled once a minute they cost at most ${healthDay} a day, which the last column adds.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...loads.map(
      (r) =>
        `| ${r.load} | ${r.commits ? (r.commits / (r.ms / 1000)).toFixed(0) : 0} | ${KINDS.map((k) => r.all[k]).join(' | ')} | ${r.all.total} | ${r.health.total} (${r.healthPolls}) | ${fmt(r.perDay.withoutHealth)} | ${fmt(r.perDay.withoutHealth + healthDay)} |`,
    ),
    '',
    'Per day by kind, without /health:',
    '',
    `| Load | ${KINDS.join(' | ')} |`,
    `|---|${KINDS.map(() => '---:').join('|')}|`,
    ...loads.map((r) => `| ${r.load} | ${KINDS.map((k) => fmt(perDay(r.archive[k], r.ms))).join(' | ')} |`),
    '',
    'What each load sent:',
    ...loads.map(
      (r) =>
        `- ${r.load}: ${listOf(r.purposes)}; ${r.segments} segments${r.segmentBytes === undefined ? '' : ` (${(r.segmentBytes / 2 ** 20).toFixed(1)} MiB)`} in ${r.packs} packs`,
    ),
    `- start-up until steady state (the catalog built from the bucket at the first start, the first generation, its snapshot backup): ${startup.requests}: ${listOf(startup.purposes)}`,
    `- between loads (a writer starting or stopping): ${run.betweenLoads}`,
    '',
    'Once a day, not in these windows: the rollover to a new generation and its snapshot backup, about ' +
      `${rollover} requests (the start-up's without its LISTs, plus the ended generation's description); WAL_RETENTION (7 days) ` +
      "later, a DELETE for each of that generation's packs left (one per pass where compaction did not merge them, about one " +
      'per hour where it did) and its description, and two for its snapshot backup once retention takes it.',
    '',
  ];
  const busy = loads.at(-1)!;
  const idle = loads[0]!;
  const lists = loads.reduce((n, r) => n + r.all.LIST, 0);
  const idleDay = idle.perDay.withoutHealth + healthDay + rollover;
  const putsPerInterval = busy.all.PUT / (busy.ms / interval);
  const compaction = loads.reduce(
    (n, r) =>
      n +
      Object.entries(r.purposes)
        .filter(([k]) => k.includes('compaction'))
        .reduce((m, [, v]) => m + v, 0),
    0,
  );
  out.push(
    `Busy load: the mirror passes sent ${busy.packPutsPerInterval.mean.toFixed(2)} pack PUTs per WAL_MIRROR_INTERVAL on average, at most ${busy.packPutsPerInterval.max} in any one interval (stamped to 20 ms); ${putsPerInterval.toFixed(2)} PUTs of any kind per interval.`,
    compaction
      ? `Compaction sent ${compaction} requests in these windows; its deletions (10 minutes after a merge) and its ten-minute and hour merges fall outside windows shorter than about an hour.`
      : 'No request of compaction in these windows.',
    ...(run.code
      ? [
          '',
          `Code measured: ${run.code.commit}${run.code.changed.length ? ` with changes in the working tree to ${run.code.changed.join(', ')}` : ''}.`,
        ]
      : []),
    '',
    'Targets:',
    `- no LIST in steady state: ${lists === 0 ? '✅ met' : `❌ MISSED (${lists})`}`,
    `- an idle database ≤ 100 requests a day: ${idleDay <= 100 ? '✅ met' : '❌ MISSED'} (${idleDay}: ${idle.perDay.withoutHealth} + /health ≤ ${healthDay} + the rollover ~${rollover})`,
    `- a busy one ≤ one PUT per interval: ${putsPerInterval <= 1.005 && busy.packPutsPerInterval.max <= 1 ? '✅ met' : '❌ MISSED'} (${putsPerInterval.toFixed(2)} of any kind; the passes' at most ${busy.packPutsPerInterval.max} in one interval)`,
  );
  return out;
}

async function measure(minutes: number): Promise<BucketRequestsRun> {
  const ms = minutes * 60_000;
  const machine = describeMachine(process.cwd());
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
  const code = {
    commit: git('rev-parse', '--short', 'HEAD'),
    changed: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean),
  };
  const s3 = await S3Server.start({ record: true });
  const stamper = stampRequests(s3);
  const labeller = new Labeller(s3.bucket, s3.requests);
  // The producer runs in this process: the SDK takes the bucket's credentials from its environment.
  const env = s3.env(PREFIX);
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'] as const) process.env[k] = env[k];
  let stack: WalStack | undefined;
  try {
    progress('starting the worker and producer (WAL archiving on, the bucket as mirror, default intervals)');
    const startedAt = Date.now();
    stack = await startWalStack('bucket-requests', 1_000, env);
    const { catalog, box } = stack;
    const steady = await waitUntil(
      "the generation's snapshot backup copied to the bucket",
      () => {
        const g = catalog.wal.openGeneration();
        if (!g?.snapshot_backup_id) return undefined;
        const copied = catalog.copies(MIRROR).some((c) => c.backup_id === g.snapshot_backup_id && c.status === 'ok');
        return copied && catalog.wal.unmirroredSummary().count === 0 ? g : undefined;
      },
      300_000,
      200,
    );
    // The description that names the snapshot goes at the next pass; a few passes more to settle.
    await new Promise((r) => setTimeout(r, 5_000));
    const startup = s3.requests.slice();
    progress(`steady state after ${((Date.now() - startedAt) / 1000).toFixed(0)} s (generation ${steady.id}): ${startup.length} requests`);

    const loads = [
      { name: 'idle (no writer)', everyMs: null },
      { name: '1 commit/s', everyMs: 1_000 },
      { name: '200 commits/s (every 5 ms)', everyMs: 5 },
    ];
    const results: LoadResult[] = [];
    for (const load of loads) {
      progress(`${load.name}: ${minutes} min`);
      const r = await runLoad(stack, s3, { stamps: stamper.stamps, labeller }, load, ms);
      results.push(r);
      progress(`${load.name}: ${r.all.total} requests (${r.health.total} by /health), ${r.segments} segments, ${r.packs} packs`);
    }
    stamper.stop();
    return {
      at: new Date().toISOString(),
      code,
      minutes,
      machine,
      intervals: { walArchive: box.config.walArchiveInterval, walMirror: box.config.walMirrorInterval },
      autoBackupEnabled: box.config.autoBackupEnabled,
      startup: {
        requests: startup.length,
        counts: count(startup, s3.bucket),
        purposes: purposes(startup, labeller.upTo(startup.length), s3.bucket),
      },
      betweenLoads: s3.requests.length - startup.length - results.reduce((n, r) => n + r.all.total, 0),
      loads: results.map((r) => ({
        ...r,
        perDay: {
          all: perDay(r.all.total, r.ms),
          withoutHealth: perDay(r.archive.total, r.ms),
          byKind: Object.fromEntries(KINDS.map((k) => [k, perDay(r.all[k], r.ms)])) as Record<Kind, number>,
        },
      })),
      health: {
        pollEveryMs: HEALTH_EVERY_MS,
        bucketProbeTtlMs: BUCKET_PROBE_TTL_MS,
        perDayAtMost: Math.min(DAY_MS / HEALTH_EVERY_MS, DAY_MS / BUCKET_PROBE_TTL_MS),
      },
    };
  } finally {
    stamper.stop();
    if (stack) await stopWalStack(stack);
    await s3.cleanup();
  }
}

async function main(): Promise<void> {
  const { minutes, json, rerender } = options();
  if (rerender) {
    const run = JSON.parse(fs.readFileSync(rerender, 'utf8')) as BucketRequestsRun;
    process.stdout.write(
      `${render(run, `node --import tsx bench/bucket-requests.ts --minutes ${run.minutes} --json ${rerender}`).join('\n')}\n`,
    );
    return;
  }
  const run = await measure(minutes);
  const command = `node --import tsx bench/bucket-requests.ts --minutes ${minutes}${json ? ` --json ${json}` : ''}`;
  process.stdout.write(`${render(run, command).join('\n')}\n`);
  if (json) {
    fs.writeFileSync(json, `${JSON.stringify(run, null, 2)}\n`);
    progress(`wrote ${json}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
