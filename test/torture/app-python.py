"""The torture harness's application on Python's sqlite3 (SQLite 3.40.1): app-node.mjs, line for line.

One operation per line of stdin (JSON), one JSON answer per line on stdout; every commit is appended
to the truth log before the answer. argv: <database> <log file> <build label> <scenario>
"""
import hashlib
import json
import os
import sqlite3
import sys
import time

FILE, LOG_FILE, BUILD, SCENARIO = sys.argv[1:5]
MASK = (1 << 64) - 1
BIG_BASE = 1_000_000_000
CHUNK = 1 << 20
log = os.open(LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def write(entry):
    entry = {**entry, "app": BUILD, "sc": int(SCENARIO)}
    os.write(log, (json.dumps(entry, separators=(",", ":")) + "\n").encode())


def pad_for(row_id, v, length):
    seed = hashlib.sha256(f"{row_id}:{v}".encode()).digest()
    return (seed * (length // 32 + 1))[:length]


def row_hash(row_id, v, pad):
    h = hashlib.sha256(f"{row_id}:{v}:".encode())
    h.update(pad)
    return h.digest()[:8].hex()


def now():
    return int(time.time() * 1000)


db = None
autockpt = -1
seq = 0
digest = 0


def pragma(sql):
    row = db.execute(f"PRAGMA {sql}").fetchone()
    return row[0] if row and len(row) == 1 else row


def open_db():
    global db, seq, digest
    db = sqlite3.connect(FILE, timeout=2.0, isolation_level=None)
    if str(pragma("journal_mode")) != "wal":
        pragma("journal_mode = WAL")
    if autockpt >= 0:
        pragma(f"wal_autocheckpoint = {autockpt}")
    pragma("synchronous = NORMAL")
    seq = int(db.execute("SELECT v FROM meta WHERE k = 'seq'").fetchone()[0])
    digest = 0
    for (h,) in db.execute("SELECT h FROM data"):
        digest = (digest + int(h, 16)) & MASK


def transaction(op):
    global seq, digest
    started = now()
    db.execute("BEGIN IMMEDIATE")
    try:
        nxt = seq + 1
        d = digest
        max_id = db.execute(f"SELECT coalesce(max(id), 0) FROM data WHERE id < {BIG_BASE}").fetchone()[0]

        def pick(r, n):
            return db.execute(
                f"SELECT id, h FROM data WHERE id >= ? AND id < {BIG_BASE} ORDER BY id LIMIT ?", (int(r * max_id), n)
            ).fetchall()

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
        write({"seq": seq, "tb": tb, "ta": ta, "d": f"{d:016x}", "op": op["op"], "jm": op.get("jm")})
        return {"committed": True, "seq": seq, "ms": ta - started}
    except Exception:
        if db.in_transaction:
            db.execute("ROLLBACK")
        stored = int(db.execute("SELECT v FROM meta WHERE k = 'seq'").fetchone()[0])
        if stored != seq:
            open_db()
            write({"seq": seq, "tb": started, "ta": now(), "d": f"{digest:016x}", "op": op["op"], "recovered": True})
            return {"committed": True, "seq": seq}
        raise


def op_autockpt(op):
    global autockpt
    autockpt = op["pages"]
    pragma(f"wal_autocheckpoint = {op['pages']}")
    return {}


def op_ckpt(op):
    busy, log_frames, checkpointed = db.execute(f"PRAGMA wal_checkpoint({op['mode']})").fetchone()
    return {"busy": busy, "log": log_frames, "checkpointed": checkpointed}


def op_reopen(op):
    db.close()
    open_db()
    return {}


def op_vacuum(op):
    db.execute("VACUUM")
    return {}


def op_journal(op):
    mode = str(pragma("journal_mode = DELETE"))
    if mode != "delete":
        return {"refused": mode}
    at = now()
    write({"event": "journal-delete", "t": at})
    txs = []
    try:
        for _ in range(op["txs"]):
            txs.append(transaction({**op, "op": "tx", "jm": "delete"})["seq"])
    finally:
        pragma("journal_mode = WAL")
    return {"switched": True, "at": at, "txs": txs}


def op_pagesize(op):
    mode = str(pragma("journal_mode = DELETE"))
    if mode != "delete":
        return {"refused": mode}
    at = now()
    try:
        pragma(f"page_size = {op['size']}")
        db.execute("VACUUM")
    finally:
        pragma("journal_mode = WAL")
    size = pragma("page_size")
    write({"event": "page-size", "t": at, "size": size})
    return {"switched": True, "at": at, "size": size}


def op_replace(op):
    nxt = FILE + ".new"
    if os.path.exists(nxt):
        os.remove(nxt)
    db.execute("VACUUM INTO ?", (nxt,))
    db.close()
    at = now()
    os.rename(nxt, FILE)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(FILE + suffix):
            os.remove(FILE + suffix)
    open_db()
    write({"event": "replace", "t": at})
    return {"replaced": True, "at": at}


def op_exit(op):
    db.close()
    return {"exiting": True}


OPS = {
    "tx": transaction,
    "autockpt": op_autockpt,
    "ckpt": op_ckpt,
    "reopen": op_reopen,
    "vacuum": op_vacuum,
    "journal": op_journal,
    "pagesize": op_pagesize,
    "replace": op_replace,
    "exit": op_exit,
}

open_db()
print(json.dumps({"ready": True, "seq": seq, "version": sqlite3.sqlite_version}), flush=True)
for line in sys.stdin:
    op = json.loads(line)
    try:
        if op["op"] != "exit" and str(pragma("journal_mode")) != "wal":
            pragma("journal_mode = WAL")
        answer = {"ok": True, **OPS[op["op"]](op)}
    except Exception as err:  # noqa: BLE001 - every refusal is an answer, not a crash
        answer = {"ok": False, "error": str(err)}
        if op["op"] in ("tx", "journal"):
            write({"refused": op["op"], "error": answer["error"], "t": now()})
    print(json.dumps(answer), flush=True)
    if op["op"] == "exit":
        sys.exit(0)
db.close()
