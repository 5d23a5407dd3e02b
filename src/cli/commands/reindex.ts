import fs from 'node:fs';
import { Catalog } from '../../shared/catalog/catalog.js';
import {
  catalogIsSound,
  moveCatalogAside,
  rebuildCatalog,
  reindex,
  type ReindexOptions,
  type ReindexReport,
} from '../../shared/operations/reindex.js';
import type { CliContext } from '../context.js';
import { EXIT, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';

function walLines(wal: ReindexReport['wal']): string[] {
  if (!wal) return [];
  return [
    `WAL archive: ${wal.generations.length} generation(s) with ${wal.segments} segment(s) restored from the bucket, ${wal.known.length} already listed.`,
    ...wal.refused.map((r) => `Refused ${r.name}: ${r.reason}`),
    ...wal.broken.map((b) => `Generation ${b.generation} reaches segment ${b.reachedSeq} only: ${b.reason}`),
    ...(wal.error ? [`The bucket's WAL archive could not be listed: ${wal.error}`] : []),
  ];
}

async function reindexCatalog(ctx: CliContext, opts: ReindexOptions): Promise<ExitCode> {
  const file = ctx.config.catalogPath;
  let movedAside: string | undefined;
  if (fs.existsSync(file)) {
    const sound = catalogIsSound(file);
    if (!sound.ok) {
      movedAside = moveCatalogAside(file);
      ctx.out.note(`The catalog was damaged (${sound.reason}); moved it to ${movedAside}.`);
    }
  }
  let report: ReindexReport;
  if (fs.existsSync(file)) {
    // A sound catalog keeps its verification and restore history: the manifests are added to it.
    const catalog = new Catalog(file);
    try {
      report = await reindex(ctx.config, catalog, ctx.log, opts);
    } finally {
      catalog.close();
    }
  } else {
    report = await rebuildCatalog(ctx.config, ctx.log, opts);
  }
  const lines = [
    `Catalog ${file}: ${report.imported.length} backup(s) restored from manifests, ${report.known.length} already listed.`,
    ...report.withoutManifest.map((f) => `No manifest (not imported): ${f}`),
    ...report.withoutFile.map((f) => `Manifest without its backup file: ${f}`),
    ...report.unreadable.map((u) => `Unreadable manifest ${u.name}: ${u.error}`),
    ...report.refused.map((r) => `Refused manifest ${r.name} (id ${r.id}, not imported): ${r.reason}`),
    ...report.conflicts.map((c) => `Manifest ${c.name} names id ${c.id}, which the catalog gives to ${c.catalogFile}`),
    ...(report.mirrorError ? [`The mirror could not be read (its backups were not looked at): ${report.mirrorError}`] : []),
    ...walLines(report.wal),
  ];
  ctx.out.result(lines.join('\n'), { success: true, catalog: file, movedAside: movedAside ?? null, ...report });
  return EXIT.ok;
}

export const registerReindex: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('reindex')
    .description('Rebuild a lost or damaged catalog from the manifests beside the backups (primary and mirror)')
    .option('--trust-ids', 'import manifests whose id looks implausible (names, duplicates and MACs are still checked)')
    .option('--accept-unsigned', 'with encryption on, import manifests that carry no MAC (written before manifests were signed)')
    .action(async (opts: ReindexOptions) => run(await reindexCatalog(ctx(), opts)));
};
