/** The operator's page as the server sends it: the frame and its controls; the script fills in the data. */

/** The module the page loads; it imports the rest of `assets/`. */
export const ADMIN_SCRIPT_ENTRY = 'main.js';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface AdminPageOptions {
  readOnly: boolean;
  databasePath: string;
}

/**
 * With BOARD_READ_ONLY the page is rendered without a single action control (the server refuses
 * the requests anyway): nothing to hide with CSS, nothing for the script to re-enable.
 */
export function renderAdminPage({ readOnly, databasePath }: AdminPageOptions): string {
  const db = escapeHtml(databasePath);
  const act = (html: string) => (readOnly ? '' : html);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Workstation backups · operator</title>
<link rel="stylesheet" href="/admin/admin.css">
<script type="module" src="/admin/assets/${ADMIN_SCRIPT_ENTRY}"></script>
</head>
<body data-read-only="${readOnly}" data-database="${db}">
<a class="skip" href="#backups">Skip to the backups</a>
<header class="top">
  <h1>Workstation backups</h1>
  <p class="verdict" id="verdict" data-state="verdict" role="status" aria-live="polite">loading…</p>
  <nav class="top-actions">
    ${act('<button type="button" id="backup-now" class="primary">Back up now</button>')}
    <a href="/admin/queues">Queues</a>
    <span class="updated">updated <span id="updated">never</span></span>
  </nav>
</header>
${readOnly ? '<p class="banner" id="read-only-banner">Read-only: BOARD_READ_ONLY is set, so this page shows everything and changes nothing.</p>' : ''}
<main>
<section aria-labelledby="state-title" id="state">
  <h2 id="state-title">State at a glance</h2>
  <ul class="problems" id="problems" data-state="problems"></ul>
  <dl class="cards">
    <div class="card" data-state="last-backup"><dt>Last successful backup</dt><dd id="s-last-backup">…</dd></div>
    <div class="card" data-state="archive-lag"><dt>WAL archiving</dt><dd id="s-archive">…</dd></div>
    <div class="card" data-state="last-verification"><dt>Last verification</dt><dd id="s-verification">…</dd></div>
    <div class="card" data-state="last-drill"><dt>Last restore drill</dt><dd id="s-drill">…</dd></div>
    <div class="card" data-state="disk"><dt>Free space</dt><dd id="s-disk">…</dd></div>
    <div class="card" data-state="mirror"><dt>Mirror</dt><dd id="s-mirror">…</dd></div>
  </dl>
</section>

<section aria-labelledby="window-title" id="window">
  <h2 id="window-title">Recovery window</h2>
  <p class="hint" id="window-summary" data-state="window-summary"></p>
  <p class="hint" id="window-offsite" data-state="offsite" hidden></p>
  <div class="timeline-controls">
    <label>Show <select id="span">
      <option value="fit" selected>the whole window</option>
      <option value="3600000">the last hour</option>
      <option value="86400000">the last day</option>
      <option value="259200000">the last 3 days</option>
      <option value="604800000">the last 7 days</option>
    </select></label>
    <span class="legend" aria-hidden="true">
      <span class="key gen"></span>archive generation
      <span class="key valid"></span>verified valid
      <span class="key invalid"></span>invalid
      <span class="key never"></span>never verified
      <span class="key safety"></span>pre-migration (safety)
    </span>
  </div>
  <div class="timeline-wrap">
    <svg id="timeline" role="img" aria-labelledby="window-title window-summary" tabindex="0" focusable="true"></svg>
    <div class="tip" id="tip" role="tooltip" hidden></div>
  </div>
  <p class="hint">${readOnly ? 'Hover or focus a mark for its details.' : 'Click a generation bar (or focus the timeline and use ← →) to pick a moment; hover or focus a mark for its details.'}</p>
  ${act(`<form class="restore-to" id="restore-to-form">
    <label for="restore-at">Restore the database to</label>
    <input type="datetime-local" id="restore-at" step="1" required>
    <span class="utc" id="restore-at-utc" aria-live="polite"></span>
    <button type="submit" class="danger" id="restore-at-go">Restore to this moment…</button>
    <button type="button" class="danger" id="restore-latest">Restore to latest…</button>
  </form>`)}
</section>

<section aria-labelledby="backups-title" id="backups">
  <h2 id="backups-title">Backups</h2>
  <form class="filters" id="filters">
    <label>Type <select id="f-type">
      <option value="">any</option><option value="manual">manual</option><option value="scheduled">scheduled</option><option value="pre-migration">pre-migration</option>
    </select></label>
    <label>Status <select id="f-status">
      <option value="">any</option><option value="completed">completed</option><option value="failed">failed</option><option value="in_progress">in progress</option>
    </select></label>
    <span id="b-total" class="hint" data-state="total"></span>
  </form>
  <div class="table-wrap">
    <table id="backups-table">
      <caption class="sr">Backups, newest first</caption>
      <thead><tr><th scope="col">ID</th><th scope="col">Type</th><th scope="col">Time</th><th scope="col">Size</th><th scope="col">Encoding</th><th scope="col">Verification</th><th scope="col">Mirror copy</th>${act('<th scope="col">Actions</th>')}</tr></thead>
      <tbody id="backups-body"></tbody>
    </table>
  </div>
  <div class="pager">
    <button type="button" id="page-newer" disabled>← Newer</button>
    <span id="page-info"></span>
    <button type="button" id="page-older" disabled>Older →</button>
  </div>
</section>

<section aria-labelledby="jobs-title" id="jobs">
  <h2 id="jobs-title">Jobs started here</h2>
  <ol id="job-list" aria-live="polite"></ol>
</section>
</main>
${act(`<dialog id="confirm" aria-labelledby="confirm-title">
  <form method="dialog">
    <h2 id="confirm-title">Confirm</h2>
    <p id="confirm-text"></p>
    <p class="replaced">This replaces the live database <code>${db}</code>. A safety backup of it is taken first.</p>
    <div class="dialog-actions">
      <button value="cancel" id="confirm-cancel" autofocus>Cancel</button>
      <button value="ok" id="confirm-ok" class="danger">Restore</button>
    </div>
  </form>
</dialog>`)}
</body>
</html>
`;
}
