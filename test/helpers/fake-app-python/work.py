"""What the fake application commits (__main__.py runs it), as fake-app-node/work.mjs does: the
torture's transaction on `data`, each commit appended to the truth log, and the `run` loop's
transactions at an interval. `app` is the program: its connection (`db`), `open_db`, `write`, `finish`.
"""
import hashlib
import os
import random
import sqlite3
import time
from datetime import datetime, timezone

MASK = (1 << 64) - 1
BIG_BASE = 1_000_000_000
CHUNK = 1 << 20
# The torture's state: the last sequence number committed and the digest of `data`.
seq = 0
digest = 0


def now():
    return int(time.time() * 1000)


def one(db, sql, args=()):
    return db.execute(sql, args).fetchone()[0]


def pad_for(row_id, v, length):
    seed = hashlib.sha256(f"{row_id}:{v}".encode()).digest()
    return (seed * (length // 32 + 1))[:length]


def row_hash(row_id, v, pad):
    h = hashlib.sha256(f"{row_id}:{v}:".encode())
    h.update(pad)
    return h.digest()[:8].hex()


def load_truth(db):
    """Reads the torture's state from the database (on every open)."""
    global seq, digest
    seq = int(one(db, "SELECT v FROM meta WHERE k = 'seq'"))
    digest = 0
    for (h,) in db.execute("SELECT h FROM data"):
        digest = (digest + int(h, 16)) & MASK


def transaction(app, op):
    """One torture transaction; returns what was committed, or raises (rolled back, nothing logged as committed)."""
    global seq, digest
    db = app.db
    started = now()
    db.execute("BEGIN IMMEDIATE")
    try:
        nxt = seq + 1
        d = digest
        max_id = one(db, f"SELECT coalesce(max(id), 0) FROM data WHERE id < {BIG_BASE}")

        def pick(r, n):
            return db.execute(f"SELECT id, h FROM data WHERE id >= ? AND id < {BIG_BASE} ORDER BY id LIMIT ?", (int(r * max_id), n)).fetchall()

        def put_row(row_id, length):
            nonlocal d
            pad = pad_for(row_id, nxt, length)
            h = row_hash(row_id, nxt, pad)
            db.execute("INSERT OR REPLACE INTO data (id, v, pad, h) VALUES (?, ?, ?, ?)", (row_id, nxt, pad, h))
            d = (d + int(h, 16)) & MASK

        for row_id, h in pick(op.get("delAt", 0), op.get("del", 0)):
            db.execute("DELETE FROM data WHERE id = ?", (row_id,))
            d = (d - int(h, 16)) & MASK
        for row_id, h in pick(op.get("updAt", 0), op.get("upd", 0)):
            d = (d - int(h, 16)) & MASK
            put_row(row_id, op.get("len", 100))
        for i in range(1, op.get("ins", 0) + 1):
            put_row(max_id + i, op.get("len", 100))
        big = op.get("big", 0)
        if big:
            for row_id, h in db.execute(f"SELECT id, h FROM data WHERE id >= {BIG_BASE}").fetchall():
                db.execute("DELETE FROM data WHERE id = ?", (row_id,))
                d = (d - int(h, 16)) & MASK
            i = 0
            while i * CHUNK < big:
                put_row(BIG_BASE + nxt * 100 + i, min(CHUNK, big - i * CHUNK))
                i += 1
        db.execute("UPDATE meta SET v = ? WHERE k = 'seq'", (nxt,))
        if op.get("holdMs", 0) > 0:
            time.sleep(op["holdMs"] / 1000)
        tb = now()
        db.execute("COMMIT")
        ta = now()
        seq = nxt
        digest = d
        app.write({"seq": seq, "tb": tb, "ta": ta, "d": f"{d:016x}", "op": op["op"], "jm": op.get("jm")})
        return {"committed": True, "seq": seq, "ms": ta - started}
    except Exception:
        if db.in_transaction:
            db.execute("ROLLBACK")
        # A COMMIT that raised after all? The stored sequence number tells.
        if int(one(db, "SELECT v FROM meta WHERE k = 'seq'")) != seq:
            app.open_db()
            app.write({"seq": seq, "tb": started, "ta": now(), "d": f"{digest:016x}", "op": op["op"], "recovered": True})
            return {"committed": True, "seq": seq}
        raise


# What `run` did so far: the counts every stop reports.
counts = {"lastN": 0, "commits": 0, "errors": 0, "lastError": "", "maxStallMs": 0, "generation": 0}
counts["checkpoints"] = {"done": 0, "busy": 0, "failed": 0, "moved": 0}
# What `run` does: its step, options and the time of its next commit (None: not running).
loop = None
last_file = None


def report():
    """Writes the last event n committed in place, so that a SIGKILL leaves the truth on disk."""
    if last_file is not None:
        os.pwrite(last_file, f"{counts['lastN']:>15}\n".encode(), 0)


def work_events(db):
    db.execute("CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY, at TEXT NOT NULL)")
    transfer = work_transfers(db)
    counts["lastN"] = one(db, "SELECT coalesce(max(n), 0) FROM events")

    def step():
        db.execute("INSERT INTO events (n, at) VALUES (?, ?)", (counts["lastN"] + 1, datetime.now(timezone.utc).isoformat()))
        transfer()
        return lambda: counts.update(lastN=counts["lastN"] + 1)

    return step


def work_transfers(db):
    accounts = one(db, "SELECT count(*) FROM accounts")

    def step():
        amount = random.randint(1, 10)
        db.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, random.randint(1, accounts)))
        db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, random.randint(1, accounts)))
        return lambda: None

    return step


def work_generations(db):
    db.execute("CREATE TABLE IF NOT EXISTS generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)")
    db.execute("INSERT OR IGNORE INTO generation (id, value) VALUES (1, 0)")
    counts["generation"] = one(db, "SELECT value FROM generation")

    def step():
        value = counts["generation"] + 1
        db.execute("UPDATE workflows SET definition = 'generation ' || ? || ' ' || substr(definition, -200) WHERE id % 97 = 0", (value,))
        db.execute("UPDATE generation SET value = ?", (value,))
        return lambda: counts.update(generation=value)

    return step


WORK = {"events": work_events, "transfers": work_transfers, "generations": work_generations}


def checkpoint(db, mode):
    c = counts["checkpoints"]
    try:
        busy, _, moved = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        c["busy" if busy else "done"] += 1
        if moved > 0:
            c["moved"] += 1
    except sqlite3.Error as err:
        c["failed"] += 1
        counts["lastError"] = str(err)


def run(app, op):
    """Commits one `work` transaction every `everyMs` until stopped, or for `seconds` and then finishes (ticks from __main__.py)."""
    global loop, last_file
    if loop:
        raise RuntimeError("already running")
    seconds = op.get("seconds", 0)
    start = time.monotonic()
    loop = {**op, "step": WORK[op["work"]](app.db), "next": start, "until": start + seconds if seconds else None}
    if app.options.get("lastFile") and last_file is None:
        last_file = os.open(app.options["lastFile"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    report()
    return {"startN": counts["lastN"]}


def tick(app):
    db = app.db
    started = now()
    ck = loop.get("checkpoint") or {}
    held = loop.get("holdEvery", 0) > 0 and (counts["commits"] + 1) % loop["holdEvery"] == 0
    committed = False
    try:
        db.execute("BEGIN IMMEDIATE")
        done = loop["step"]()
        if held:
            time.sleep(loop.get("holdMs", 0) / 1000)
        db.execute("COMMIT")
        done()
        counts["commits"] += 1
        committed = True
        report()
    except sqlite3.Error as err:
        counts["errors"] += 1
        counts["lastError"] = str(err)
        if db.in_transaction:
            db.execute("ROLLBACK")
    every = ck.get("every", 0)
    if (committed and every > 0 and counts["commits"] % every == 0) or (held and ck.get("afterHold")):
        checkpoint(db, ck.get("mode", "TRUNCATE"))
    counts["maxStallMs"] = max(counts["maxStallMs"], now() - started)
    loop["next"] = time.monotonic() + loop.get("everyMs", 5) / 1000
