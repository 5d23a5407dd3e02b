// @ts-check
/**
 * The JSON answers the page reads, as far as it reads them: types only, for the other files'
 * JSDoc (`import('./types.js').Health`). The server's own types are in src/shared/domain and
 * src/producer/routes; these follow them.
 */

/**
 * `GET /health`.
 * @typedef {object} Health
 * @property {'ok' | 'degraded' | 'down'} status
 * @property {string[]} [problems]
 * @property {{ sizeBytes: number | null } | undefined} database
 * @property {{ lastSuccessfulBackup: string | null, lastSuccessfulBackupAgeSeconds: number | null,
 *   lastBackupSize: number | null, overdue: boolean }} backups
 * @property {{ enabled: boolean, running: boolean, lagSeconds: number | null, generation: number | null,
 *   segments: number, bytes: number }} wal
 * @property {{ last: Drill | null } | undefined} drills
 * @property {{ freeBytes: number | null, neededForNextBackup: number | null }} disk
 * @property {{ mirror?: Mirror } | undefined} storage
 */

/**
 * @typedef {object} Drill
 * @property {boolean} ok
 * @property {string} at
 * @property {number} durationMs
 * @property {string | null} [reason]
 */

/**
 * The mirror as `/health` describes it.
 * @typedef {object} Mirror
 * @property {boolean} configured
 * @property {boolean | null} writable
 * @property {string} location
 * @property {number} copies
 * @property {number} missing
 * @property {{ backupId: number, error?: string | null }[]} failed
 * @property {{ since: string, reason: string } | null} [outage]
 */

/**
 * `GET /api/recovery-window`.
 * @typedef {object} RecoveryWindow
 * @property {boolean} enabled
 * @property {string | null} earliest
 * @property {string | null} latest
 * @property {Generation[]} generations
 * @property {{ from: string, to: string, reason: string }[]} gaps
 * @property {Offsite | null} [offsite]
 */

/**
 * @typedef {object} Generation
 * @property {number} id
 * @property {string} start
 * @property {string} end
 * @property {string} reason
 * @property {number} segments
 * @property {number} bytes
 * @property {number} snapshotBackupId
 * @property {{ ok: boolean, at: string, reason?: string | null, firstBadFile?: string | null } | null} [verification]
 */

/**
 * How far a restore from the mirror alone reaches.
 * @typedef {object} Offsite
 * @property {string | null} latest
 * @property {number | null} lagSeconds
 * @property {number} threshold
 * @property {number} unmirroredSegments
 */

/**
 * A backup as `GET /api/backups` lists it.
 * @typedef {object} BackupItem
 * @property {number} id
 * @property {string} backupType
 * @property {string} status
 * @property {string} startedAt
 * @property {number | null} fileSize
 */

/**
 * `GET /api/backups` (one page).
 * @typedef {object} BackupPage
 * @property {BackupItem[]} backups
 * @property {number} total
 * @property {number | null} nextCursor
 */

/**
 * A backup as `GET /api/backups/:id` shows it.
 * @typedef {BackupItem & { compression: string, lastVerification?: Verification | null }} BackupDetail
 */

/**
 * @typedef {object} Verification
 * @property {string} verifiedAt
 * @property {string} mode
 * @property {boolean} valid
 * @property {string} message
 */

/**
 * What a POST answers with `Prefer: respond-async`: the job to follow.
 * @typedef {{ jobId: string, joined?: boolean }} JobAnswer
 */

/**
 * `GET /api/jobs/:id`.
 * @typedef {object} Job
 * @property {string} state
 * @property {number | { stage?: string } | null} progress
 * @property {JobResult | null} result
 * @property {string | null} error
 */

/**
 * A finished job's result: a verification, a restore or a backup.
 * @typedef {object} JobResult
 * @property {boolean} [valid]
 * @property {string} [message]
 * @property {number | null} [safetyBackupId]
 * @property {{ restoredTo?: string } | null} [wal]
 * @property {number} [backupId]
 * @property {string} [fileName]
 * @property {number} [id]
 * @property {number | null} [fileSize]
 */

export {};
