import { execFileSync } from 'node:child_process';
import os from 'node:os';
import Database from 'better-sqlite3';

const sh = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};

/** What the numbers were measured on, as one markdown list. */
export function describeMachine(workDir: string): string[] {
  const cpus = os.cpus();
  const mem = (os.totalmem() / 2 ** 30).toFixed(1);
  const source = sh('findmnt', ['-no', 'SOURCE,FSTYPE', '--target', workDir]);
  const device = source.split(/\s+/)[0] ?? '';
  const disk = sh('lsblk', ['-dno', 'NAME,SIZE,ROTA,MODEL', device]);
  const db = new Database(':memory:');
  const bundled = String((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v);
  db.close();
  return [
    `CPU: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown'}`,
    `Memory: ${mem} GiB`,
    `Disk: ${source} (${disk.replace(/\s+/g, ' ')}; lsblk ROTA=1 means the kernel reports it as rotational)`,
    `OS: ${os.type()} ${os.release()}, load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    `Node ${process.version}; SQLite ${bundled} (better-sqlite3), sqlite3 CLI ${sh('sqlite3', ['--version']).split(' ')[0]}`,
  ];
}
