/**
 * The Docker image and the compose file. No Docker engine runs here: the compose CLI checks the
 * file, and what compose would start runs as plain processes from a fresh `tsc` build.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { killAll, spawnTs } from '../helpers/processes.js';
import { auth } from '../helpers/producer.js';
import { freePort } from '../helpers/redis-server.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';
import { ROOT } from '../helpers/root.js';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: (string | { source: string; target: string })[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
}

/** `docker compose`, or the standalone `docker-compose` where the CLI plugin is not installed. */
function composeCli(): string[] {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  throw new Error('neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)');
}

function composeConfig(): { services: Record<string, Service>; volumes?: Record<string, unknown> } {
  const [cmd, ...args] = composeCli();
  const out = execFileSync(cmd!, [...args, '-f', path.join(ROOT, 'docker-compose.yml'), 'config'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '' },
  });
  return parse(out.toString()) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
}

const mounts = (s: Service) =>
  (s.volumes ?? []).map((v) =>
    typeof v === 'string' ? { source: v.split(':')[0]!, target: v.split(':')[1]! } : { source: v.source, target: v.target },
  );

describe('docker-compose.yml', () => {
  const { services, volumes } = composeConfig();

  it('passes the compose CLI and declares Redis, the producer and three workers', () => {
    expect(Object.keys(services).sort()).toEqual(['producer', 'redis', 'worker']);
    expect(services.worker!.deploy?.replicas).toBe(3);
    expect(Object.keys(volumes ?? {})).toEqual(expect.arrayContaining(['workstation-db', 'backups']));
  });

  it('gives Redis a healthcheck and noeviction, and makes both sides wait for it', () => {
    const redis = services.redis!;
    expect(redis.command!.join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.healthcheck!.test.join(' ')).toMatch(/redis-cli ping/);
    for (const name of ['producer', 'worker']) expect(services[name]!.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
    expect(services.producer!.healthcheck!.test.join(' ')).toMatch(/\/health/);
  });

  it('runs one image for producer and workers, sharing the database and backup volumes', () => {
    const producer = services.producer!;
    const worker = services.worker!;
    expect(producer.image).toBe(worker.image);
    expect(mounts(producer)).toEqual(mounts(worker));
    const targets = new Map(mounts(worker).map((m) => [m.target, m.source]));
    expect(targets.get(path.posix.dirname(worker.environment!.DATABASE_PATH!))).toBe('workstation-db');
    expect(targets.get(worker.environment!.BACKUP_DIR!)).toBe('backups');
    // Docker waits longer than a worker lets its running job finish before it sends SIGKILL.
    const grace = Number.parseInt(worker.stop_grace_period ?? '10', 10) * 1000;
    expect(grace).toBeGreaterThan(Number(worker.environment!.SHUTDOWN_TIMEOUT ?? 30_000));
  });
});

describe('Dockerfile', () => {
  const lines = fs
    .readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'));
  const stages = lines.filter((l) => /^FROM /i.test(l));

  it('builds in one stage (better-sqlite3 from source) and runs from another as a non-root user', () => {
    expect(stages.length).toBe(2);
    // Node.js 24, the LTS line (20 ended in April 2026); both stages on the same image.
    expect(stages[0]).toMatch(/^FROM node:24\S* AS build$/);
    expect(stages[1]).toBe(stages[0]!.replace(/ AS build$/, ''));
    const text = lines.join('\n');
    expect(text).toMatch(/apt-get install[^\n]*python3 make g\+\+/);
    expect(text).toMatch(/npm ci/);
    expect(text).toMatch(/COPY --from=build/);
    const user = lines.filter((l) => /^USER /.test(l)).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/root|\b0\b/);
    // Nothing that the build would fetch from outside the npm registry and Debian.
    expect(text).not.toMatch(/curl|wget|ADD https?:/);
  });
});

describe('what compose starts, as plain processes', () => {
  let box: Sandbox | undefined;
  const outDir = path.join(ROOT, `.build-test-${process.pid}`);
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    fs.rmSync(outDir, { recursive: true, force: true });
    await box?.cleanup();
  });

  function run(command: string[], env: Record<string, string>): { child: ChildProcess; ready: (re: RegExp) => Promise<void> } {
    const [cmd, ...args] = command.map((a) => a.replace(/^dist\//, `${outDir}/`));
    const child = spawn(cmd === 'node' ? process.execPath : cmd!, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const ready = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => {
          if (re.test(out)) {
            clearInterval(timer);
            resolve();
          } else if (child.exitCode !== null) {
            clearInterval(timer);
            reject(new Error(`${args.join(' ')} exited: ${out.slice(-2000)}`));
          }
        }, 50);
      });
    return { child, ready };
  }

  it('builds as `npm run build` does, and the compiled producer and worker serve a backup and the operator page; the healthcheck passes', async () => {
    // package.json's build script into a directory of the test's own: tsc, then the copies of the plain .js files.
    const { scripts } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { build: string } };
    expect(scripts.build).toMatch(/^tsc -p \. && /);
    const build = scripts.build
      .replace(/^tsc -p \. /, `tsc -p . --outDir ${outDir} --sourceMap false `)
      .replaceAll(' dist/', ` ${outDir}/`);
    expect(build).not.toMatch(/(^|\s)dist\//);
    const bin = [path.join(ROOT, 'node_modules/.bin'), path.dirname(process.execPath), process.env.PATH ?? ''].join(':');
    execFileSync('sh', ['-c', build], { cwd: ROOT, env: { PATH: bin } });
    expect(fs.existsSync(path.join(outDir, 'shared/sqlite/sqlite-thread.js'))).toBe(true);
    expect(fs.existsSync(path.join(outDir, 'shared/sqlite/connection-thread.js'))).toBe(true);

    const { services } = composeConfig();
    const port = await freePort();
    box = sandbox('deploy', { PORT: String(port), LOG_LEVEL: 'info' });
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });

    const worker = run(services.worker!.command!, box.env);
    await worker.ready(/worker ready/);
    const producer = run(services.producer!.command!, box.env);
    await producer.ready(/producer listening/);

    // The compose healthcheck, run as compose would run it inside the container.
    const [kind, ...probe] = services.producer!.healthcheck!.test;
    expect(kind).toBe('CMD');
    const health = spawnSync(probe[0] === 'node' ? process.execPath : probe[0]!, probe.slice(1), {
      env: { PATH: process.env.PATH ?? '', PORT: String(port) },
    });
    expect(health.status).toBe(0);

    const res = await request(`http://127.0.0.1:${port}`).post('/api/backups').set(auth);
    expect(res.status).toBe(201);
    expect(res.body.backup.status).toBe('completed');

    // The operator page and each of its script modules, as written in src/.
    const basic = `Basic ${Buffer.from(`operator:${box.env.API_TOKEN}`).toString('base64')}`;
    const page = await request(`http://127.0.0.1:${port}`).get('/admin').set('Authorization', basic);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script type="module" src="/admin/assets/main.js"></script>');
    const assets = path.join(ROOT, 'src/producer/admin/assets');
    for (const name of fs.readdirSync(assets).filter((n) => n.endsWith('.js'))) {
      const asset = await request(`http://127.0.0.1:${port}`).get(`/admin/assets/${name}`).set('Authorization', basic);
      expect(asset.status, name).toBe(200);
      expect(asset.text, name).toBe(fs.readFileSync(path.join(assets, name), 'utf8'));
    }

    for (const { child } of [producer, worker]) {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    // With the producer gone the healthcheck fails, as Docker would see it.
    expect(spawnSync(process.execPath, probe.slice(1), { env: { PATH: process.env.PATH ?? '', PORT: String(port) } }).status).toBe(1);
  }, 180_000);
});

describe('npm start', () => {
  let box: Sandbox | undefined;

  afterAll(async () => {
    await killAll();
    await box?.cleanup();
  });

  it('runs the producer and WORKERS worker processes, replaces one that dies, and stops them all on SIGTERM', async () => {
    box = sandbox('start', { WORKERS: '2', LOG_LEVEL: 'info' });
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
    const launcher = spawnTs('src/start.ts', box.env);
    const pidsOf = (re: RegExp) => [...launcher.output().matchAll(re)].map((m) => Number(m[1]));
    const workerPids = () => pidsOf(/"pid":(\d+)[^\n]*"worker ready"/g);
    await waitUntil(
      'two workers and the producer',
      () => workerPids().length === 2 && /producer listening/.test(launcher.output()),
      60_000,
    );
    const [first, second] = workerPids();
    expect(first).not.toBe(second);
    expect(first).not.toBe(launcher.child.pid);

    // A worker killed outright is replaced by a new process.
    process.kill(first!, 'SIGKILL');
    await waitUntil('a replacement worker', () => workerPids().length === 3, 60_000);
    const replacement = workerPids()[2]!;
    expect([first, second]).not.toContain(replacement);

    expect(await launcher.stop()).toBe(0);
    for (const pid of [second!, replacement]) expect(() => process.kill(pid, 0)).toThrow();
    expect(launcher.output()).toMatch(/worker stopped[\s\S]*worker stopped/);
  }, 120_000);
});
