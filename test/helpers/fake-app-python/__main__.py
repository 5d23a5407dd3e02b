"""The fake application on Python's sqlite3 (another SQLite build than the one this repository bundles):
fake-app-node/main.mjs, line for line, and kept in step with it. Driven through test/helpers/fake-app.ts,
where the protocol is described; what it commits is in work.py. Commands are read by a thread of their
own so that `run` can commit between them.

argv: <database> <options as JSON>
"""
import json
import os
import queue
import signal
import sqlite3
import sys
import threading
import time

import work

FILE = sys.argv[1]
OPTIONS = json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
TRUTH = OPTIONS.get("truth")
truth_log = os.open(TRUTH["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if TRUTH else None
now = work.now


def say(line):
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class App:
    """The connection and what work.py needs of the program."""

    db = None
    options = OPTIONS
    autockpt = OPTIONS.get("autocheckpoint", -1)

    def open_db(self):
        self.db = sqlite3.connect(FILE, timeout=OPTIONS.get("busyTimeoutMs", 5000) / 1000, isolation_level=None)
        if str(pragma("journal_mode")) != "wal":
            pragma("journal_mode = WAL")
        if self.autockpt >= 0:
            pragma(f"wal_autocheckpoint = {self.autockpt}")
        if OPTIONS.get("synchronous"):
            pragma(f"synchronous = {OPTIONS['synchronous']}")
        if TRUTH:
            work.load_truth(self.db)

    def write(self, entry):
        """Appends to the truth log (the torture harness's), when there is one."""
        if truth_log is not None:
            line = json.dumps({**entry, "app": TRUTH["label"], "sc": TRUTH["scenario"]}, separators=(",", ":"))
            os.write(truth_log, (line + "\n").encode())

    def finish(self, line):
        """Closes the connection (as an application does), says so with the counts and exits 0."""
        self.db.close()
        say({**line, **work.counts})
        # Not sys.exit: the thread reading stdin may hold its lock, and the interpreter's shutdown would wait for it.
        os._exit(0)


app = App()


def pragma(sql):
    row = app.db.execute(f"PRAGMA {sql}").fetchone()
    return row[0] if row and len(row) == 1 else row


def op_autockpt(op):
    app.autockpt = op["pages"]
    pragma(f"wal_autocheckpoint = {op['pages']}")
    return {}


def op_ckpt(op):
    busy, log_frames, checkpointed = app.db.execute(f"PRAGMA wal_checkpoint({op['mode']})").fetchone()
    return {"busy": busy, "log": log_frames, "checkpointed": checkpointed}


def op_reopen(op):
    app.db.close()
    app.open_db()
    return {}


def op_vacuum(op):
    app.db.execute("VACUUM")
    return {}


def op_journal(op):
    mode = str(pragma("journal_mode = DELETE"))
    if mode != "delete":
        return {"refused": mode}
    at = now()
    app.write({"event": "journal-delete", "t": at})
    txs = []
    try:
        for _ in range(op["txs"]):
            txs.append(work.transaction(app, {**op, "op": "tx", "jm": "delete"})["seq"])
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
        app.db.execute("VACUUM")
    finally:
        pragma("journal_mode = WAL")
    size = pragma("page_size")
    app.write({"event": "page-size", "t": at, "size": size})
    return {"switched": True, "at": at, "size": size}


def op_replace(op):
    nxt = FILE + ".new"
    if os.path.exists(nxt):
        os.remove(nxt)
    app.db.execute("VACUUM INTO ?", (nxt,))
    app.db.close()
    at = now()
    os.rename(nxt, FILE)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(FILE + suffix):
            os.remove(FILE + suffix)
    app.open_db()
    app.write({"event": "replace", "t": at})
    return {"replaced": True, "at": at}


OPS = {
    "tx": lambda op: work.transaction(app, op),
    "run": lambda op: work.run(app, op),
    "count": lambda op: {"n": work.one(app.db, f'SELECT count(*) FROM "{op["table"]}"')},
    "autockpt": op_autockpt,
    "ckpt": op_ckpt,
    "reopen": op_reopen,
    "vacuum": op_vacuum,
    "journal": op_journal,
    "pagesize": op_pagesize,
    "replace": op_replace,
    "exit": lambda op: app.finish({"ok": True, "exiting": True}),
}


def handle(op):
    try:
        # A switch back to WAL that was refused earlier is tried again first.
        if op["op"] != "exit" and str(pragma("journal_mode")) != "wal":
            pragma("journal_mode = WAL")
        answer = {"ok": True, **OPS[op["op"]](op)}
    except Exception as err:  # noqa: BLE001 - every refusal is an answer, not a crash
        answer = {"ok": False, "error": str(err)}
        if op["op"] in ("tx", "journal"):
            app.write({"refused": op["op"], "error": answer["error"], "t": now()})
    say(answer)


def read_commands(commands):
    for line in sys.stdin:
        commands.put(line)
    commands.put(None)


stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
app.open_db()
say({"ready": True, "seq": work.seq, "version": sqlite3.sqlite_version})
commands = queue.Queue()
threading.Thread(target=read_commands, args=(commands,), daemon=True).start()
while True:
    if stopping or (work.loop and work.loop["until"] is not None and time.monotonic() >= work.loop["until"]):
        app.finish({"done": True})
    wait = max(0.0, work.loop["next"] - time.monotonic()) if work.loop else 0.05
    try:
        line = commands.get(timeout=wait) if wait > 0 else commands.get_nowait()
    except queue.Empty:
        line = ""
    if line is None:
        app.finish({"done": True})
    if line:
        handle(json.loads(line))
    if work.loop and time.monotonic() >= work.loop["next"]:
        work.tick(app)
