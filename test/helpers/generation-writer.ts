/**
 * A writer that would tear any copy taken while a checkpoint runs: each transaction stamps one
 * generation number on rows spread over the whole file and on the `generation` row, then it
 * checkpoints at once (PASSIVE, as SQLite's autocheckpoint does), over and over, until SIGTERM.
 * A consistent copy holds one generation everywhere. Prints one JSON line when ready and one
 * with its counts when it stops.
 */
import Database from 'better-sqlite3';

const [file] = process.argv.slice(2);
const db = new Database(file!);
db.pragma('journal_mode = WAL');
db.pragma('busy_timeout = 60000');
db.exec('CREATE TABLE IF NOT EXISTS generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)');
db.exec('INSERT OR IGNORE INTO generation (id, value) VALUES (1, 0)');
const stamp = db.prepare("UPDATE workflows SET definition = 'generation ' || ? || ' ' || substr(definition, -200) WHERE id % 97 = 0");
const bump = db.prepare('UPDATE generation SET value = ?');
const step = db.transaction((value: number) => {
  stamp.run(value);
  bump.run(value);
});
let generation = (db.prepare('SELECT value FROM generation').pluck().get() as number) + 1;
let checkpointed = 0;
let stopping = false;
const loop = () => {
  if (stopping) return;
  step(generation++);
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as { checkpointed: number }[];
  if (result && result.checkpointed > 0) checkpointed++;
  setImmediate(loop);
};
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
loop();
process.on('SIGTERM', () => {
  stopping = true;
  db.close();
  process.stdout.write(`${JSON.stringify({ generations: generation - 1, checkpointed })}\n`);
  process.exit(0);
});
