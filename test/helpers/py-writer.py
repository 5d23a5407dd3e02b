"""
The application built on another SQLite: Python's own sqlite3 module (not the SQLite the service
links), in a process of its own. It commits one transaction every few milliseconds that inserts a
numbered, time-stamped row into `events` and moves money between two accounts (the balance sum
never changes), writes the last committed n into a file of its own after each commit, and exits
normally (closing its connection, as an application does) after the given number of seconds or
on SIGTERM. It prints one JSON line when ready and one with its counts when done.

argv: <database> <json options>
  everyMs        milliseconds between commits (5)
  seconds        how long to write before exiting (0: until SIGTERM)
  lastFile       where the last committed n is written
  holdMs         every `holdEvery` commits, keep that transaction open this long before COMMIT
  holdEvery      see holdMs (0: never)
  truncateAfterHold  run PRAGMA wal_checkpoint(TRUNCATE) right after each held transaction
  autocheckpoint the connection's wal_autocheckpoint (absent: SQLite's default)
"""

import json
import os
import random
import signal
import sqlite3
import sys
import time
from datetime import datetime, timezone

path, options = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
every = options.get("everyMs", 5) / 1000
seconds = options.get("seconds", 0)
hold_ms = options.get("holdMs", 0)
hold_every = options.get("holdEvery", 0)
truncate_after_hold = options.get("truncateAfterHold", False)

db = sqlite3.connect(path, timeout=5, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
if "autocheckpoint" in options:
    db.execute(f"PRAGMA wal_autocheckpoint={int(options['autocheckpoint'])}")
db.execute("CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY, at TEXT NOT NULL)")
accounts = db.execute("SELECT count(*) FROM accounts").fetchone()[0]
n = db.execute("SELECT coalesce(max(n), 0) FROM events").fetchone()[0]
last = os.open(options["lastFile"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def report(value):
    os.pwrite(last, f"{value:>15}\n".encode(), 0)


report(n)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
print(json.dumps({"ready": True, "startN": n, "sqlite": sqlite3.sqlite_version}), flush=True)

commits = errors = truncated = busy = 0
last_error = ""
deadline = time.monotonic() + seconds if seconds else None
while not stop and (deadline is None or time.monotonic() < deadline):
    held = hold_every and (commits + 1) % hold_every == 0
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO events (n, at) VALUES (?, ?)", (n + 1, datetime.now(timezone.utc).isoformat()))
        amount = random.randint(1, 10)
        db.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, random.randint(1, accounts)))
        db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, random.randint(1, accounts)))
        if held:
            time.sleep(hold_ms / 1000)
        db.execute("COMMIT")
        n += 1
        commits += 1
        report(n)
    except sqlite3.Error as err:
        errors += 1
        last_error = str(err)
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    if held and truncate_after_hold:
        try:
            row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if row[0]:
                busy += 1
            else:
                truncated += 1
        except sqlite3.Error as err:
            last_error = str(err)
    time.sleep(every)

db.close()
os.close(last)
print(
    json.dumps(
        {"done": True, "lastN": n, "commits": commits, "errors": errors, "lastError": last_error, "truncated": truncated, "busy": busy}
    ),
    flush=True,
)
