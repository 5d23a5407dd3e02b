/**
 * `npm start`: the producer and WORKERS worker processes, each its own process, restarted if one
 * dies unexpectedly. SIGTERM/SIGINT are passed on and the launcher exits when all have stopped.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig } from './shared/runtime/config.js';
import { createLogger } from './shared/runtime/logger.js';

const config = loadConfig();
const log = createLogger(config, 'launcher');
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const script = (name: string) => fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));

const children = new Set<ChildProcess>();
let stopping = false;
let exitCode = 0;

function launch(name: string, file: string): void {
  const child = fork(file, [], { stdio: 'inherit' });
  children.add(child);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (stopping) {
      if (children.size === 0) process.exit(exitCode);
      return;
    }
    if (code !== 0 && name === 'producer') {
      // The producer could not start (Redis unreachable, port taken, bad config): a restart
      // would not change that, so stop everything and say so through the exit code.
      log.fatal({ name, code }, `${name} exited; stopping`);
      exitCode = code ?? 1;
      stop('SIGTERM');
      return;
    }
    log.error({ name, code, signal }, `${name} exited unexpectedly; restarting in 1 s`);
    setTimeout(() => launch(name, file), 1_000);
  });
}

function stop(signal: NodeJS.Signals): void {
  if (stopping) {
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }
  stopping = true;
  if (children.size === 0) process.exit(exitCode);
  for (const c of children) c.kill(signal);
}

launch('producer', script('producer/server'));
for (let i = 0; i < config.workers; i++) launch(`worker-${i + 1}`, script('worker/index'));
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
