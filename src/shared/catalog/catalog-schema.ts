/**
 * The catalog's schema: the SQL that creates its tables. The types of their rows are in
 * `catalog-rows.ts`, re-exported here for the files that import them from the schema.
 */
export type * from './catalog-rows.js';

/**
 * The runbook's `backup_log` table, column for column. Everything this service adds lives in
 * tables beside it, so tools written against the runbook keep working.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS backup_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  backup_type TEXT CHECK(backup_type IN ('manual', 'scheduled', 'pre-migration')) NOT NULL,
  file_path TEXT NOT NULL,
  file_size_bytes INTEGER,
  started_at DATETIME NOT NULL,
  completed_at DATETIME,
  status TEXT CHECK(status IN ('in_progress', 'completed', 'failed')) NOT NULL,
  error_message TEXT,
  checksum TEXT
);
CREATE INDEX IF NOT EXISTS backup_log_status ON backup_log(status, id);

CREATE TABLE IF NOT EXISTS backup_detail (
  backup_id INTEGER PRIMARY KEY REFERENCES backup_log(id) ON DELETE CASCADE,
  job_id TEXT UNIQUE,
  compression TEXT NOT NULL DEFAULT 'none',
  encryption TEXT,
  page_size INTEGER,
  user_version INTEGER,
  database_size_bytes INTEGER
);

CREATE TABLE IF NOT EXISTS backup_copy (
  backup_id INTEGER NOT NULL REFERENCES backup_log(id) ON DELETE CASCADE,
  location TEXT NOT NULL,
  status TEXT CHECK(status IN ('ok', 'failed')) NOT NULL,
  checked_at DATETIME NOT NULL,
  error_message TEXT,
  PRIMARY KEY (backup_id, location)
);

CREATE TABLE IF NOT EXISTS verification (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  backup_id INTEGER NOT NULL REFERENCES backup_log(id) ON DELETE CASCADE,
  mode TEXT CHECK(mode IN ('full', 'quick')) NOT NULL,
  verified_at DATETIME NOT NULL,
  valid INTEGER NOT NULL,
  message TEXT NOT NULL,
  checks TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verification_backup ON verification(backup_id, id);

CREATE TABLE IF NOT EXISTS restore_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT UNIQUE,
  backup_id INTEGER NOT NULL,
  safety_backup_id INTEGER,
  started_at DATETIME NOT NULL,
  restored_at DATETIME,
  completed_at DATETIME,
  status TEXT CHECK(status IN ('in_progress', 'completed', 'failed', 'rolled_back')) NOT NULL,
  error_message TEXT
);

CREATE TABLE IF NOT EXISTS backup_lease (
  backup_id INTEGER NOT NULL,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (backup_id, holder)
);

CREATE TABLE IF NOT EXISTS settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS lock_fence (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO lock_fence (id, value) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS wal_generation (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at DATETIME NOT NULL,
  reason TEXT NOT NULL,
  page_size INTEGER NOT NULL,
  start_salt1 INTEGER,
  start_salt2 INTEGER,
  start_offset INTEGER,
  start_checksum0 INTEGER,
  start_checksum1 INTEGER,
  big_endian INTEGER,
  snapshot_backup_id INTEGER,
  snapshot_at DATETIME,
  ended_at DATETIME,
  end_reason TEXT,
  segments INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  first_read_at DATETIME,
  last_read_at DATETIME
);

CREATE TABLE IF NOT EXISTS wal_segment (
  generation_id INTEGER NOT NULL REFERENCES wal_generation(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  file_name TEXT NOT NULL UNIQUE,
  salt1 INTEGER NOT NULL,
  salt2 INTEGER NOT NULL,
  big_endian INTEGER NOT NULL,
  page_size INTEGER NOT NULL,
  first_offset INTEGER NOT NULL,
  last_offset INTEGER NOT NULL,
  start_checksum0 INTEGER NOT NULL,
  start_checksum1 INTEGER NOT NULL,
  end_checksum0 INTEGER NOT NULL,
  end_checksum1 INTEGER NOT NULL,
  frames INTEGER NOT NULL,
  commits INTEGER NOT NULL,
  db_size_pages INTEGER NOT NULL,
  read_at DATETIME NOT NULL,
  size_bytes INTEGER NOT NULL,
  checksum TEXT NOT NULL,
  compression TEXT NOT NULL,
  encryption TEXT,
  mirrored INTEGER,
  PRIMARY KEY (generation_id, seq)
);
CREATE INDEX IF NOT EXISTS wal_segment_read_at ON wal_segment(read_at);
CREATE INDEX IF NOT EXISTS wal_segment_unmirrored ON wal_segment(generation_id, seq) WHERE mirrored IS NOT 1;

CREATE TABLE IF NOT EXISTS wal_pack (
  name TEXT PRIMARY KEY,
  generation_id INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  size_bytes INTEGER NOT NULL,
  created_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS wal_pack_generation ON wal_pack(generation_id, first_seq);

CREATE TABLE IF NOT EXISTS wal_published (
  generation_id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS wal_verification (
  generation_id INTEGER PRIMARY KEY,
  verified_at DATETIME NOT NULL,
  ok INTEGER NOT NULL,
  segments_checked INTEGER NOT NULL,
  snapshot_ok INTEGER NOT NULL,
  bad_seq INTEGER,
  bad_file TEXT,
  reason TEXT
);

CREATE TABLE IF NOT EXISTS restore_drill (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at DATETIME NOT NULL,
  completed_at DATETIME NOT NULL,
  ok INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  trigger TEXT NOT NULL,
  targets TEXT NOT NULL,
  reason TEXT
);
`;
