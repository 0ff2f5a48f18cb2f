"""Opening the database file: one clear error per kind of bad file, and reading what
cannot be written.

SQLite's own messages ("disk I/O error" for a folder, "file is not a database", "attempt to
write a readonly database") name neither the file nor a way out, and some only appear at the
first query. So a path is looked at before SQLite opens it (a folder, a missing folder, a
file that is not SQLite or is shorter than its header says), and SQLite errors are turned
into :class:`~nbtrain.errors.StoreError` subclasses naming the path and what to do.

A database in a read-only folder or on a read-only mount cannot be read the usual way: WAL
mode needs its ``-shm`` file. Readers then fall back to ``immutable=1`` (SQLite reads the
file without any lock). That happens only when no ``-shm`` exists and none can be made, so
no writer is live: a live writer has one, and ``mode=ro`` readers then use it read-only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from nbtrain.errors import (
    CorruptStoreError,
    ReadOnlyStoreError,
    StoreAccessError,
    StoreError,
    StoreWriteError,
    UnknownRunError,
)
from nbtrain.store import schema

# SQLite primary result codes (the low byte of ``sqlite_errorcode``).
NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB = 7, 8, 10, 11, 13, 14, 15, 26
BUSY, LOCKED = 5, 6
# Errors that say the file or the disk failed, not the row being written.
STORAGE_CODES = frozenset({NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB})
_RESTORE = "restore it from a backup or pass another db path"


def primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


# OS errors that mean the disk failed (a TimeoutError, also an OSError, does not).
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EROFS, errno.EDQUOT})


def is_storage_error(exc: BaseException) -> bool:
    """True when ``exc`` means the file or the disk failed (so no later write can be trusted)."""
    if isinstance(exc, OSError):
        return exc.errno in STORAGE_ERRNOS
    return isinstance(exc, sqlite3.Error) and primary_code(exc) in STORAGE_CODES


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED (the busy timeout already expired)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (5, 6)
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "sqlite_busy" in text


class BusyInTransaction(Exception):
    """SQLITE_BUSY after ``BEGIN IMMEDIATE`` succeeded: roll back and redo the batch."""


def raise_unless_bad_row(exc: BaseException) -> None:
    """Bad rows and failing calls are skipped; busy and storage errors are not theirs."""
    if is_busy(exc):
        raise BusyInTransaction(str(exc)) from exc
    if is_storage_error(exc):
        raise exc


def check_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a path that cannot hold an nbtrain database.

    A missing file is fine (it is created) when its folder exists; an empty one too.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise StoreAccessError(
                f"{path}: the folder {path.parent} does not exist; create it or pass another "
                "db path"
            ) from None
        return
    except OSError as exc:
        raise StoreAccessError(f"{path} cannot be opened ({exc.strerror}); {_RESTORE}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise StoreAccessError(
            f"{path} is a folder, not a database file; pass a file path such as "
            f"{path / 'nbtrain.sqlite'}"
        )
    if not stat.S_ISREG(st.st_mode):
        raise StoreAccessError(f"{path} is not a regular file; pass the path of a database file")
    if st.st_size == 0:
        return
    # Never open() the file here: closing any descriptor of it releases every POSIX lock
    # this process holds on it, the locks of a live SQLite writer of this very process
    # included (another process could then check the WAL out from under it). SQLite's own
    # VFS keeps such descriptors open while locks are held, so the file is asked through it.
    if not os.access(path, os.R_OK):
        raise StoreAccessError(f"{path} cannot be read (permission denied); check its permissions")
    if st.st_size < 100:  # an SQLite header alone is 100 bytes
        raise CorruptStoreError(
            f"{path} is not an SQLite database (only {st.st_size} bytes); {_RESTORE}"
        )
    _check_header(path, st.st_size)


def _check_header(path: Path, size: int) -> None:
    """Refuse a file that is not SQLite, or shorter than the pages its header counts.

    While a WAL or journal is beside the file, part of the truth is there: only "not a
    database at all" is decided here, and everything else is left to the real connection."""
    side_files = False
    for suffix in ("-wal", "-journal"):
        with contextlib.suppress(OSError):
            side_files = side_files or os.stat(f"{path}{suffix}").st_size > 0
    try:
        conn = sqlite3.connect(
            f"{schema.uri_for(path, readonly=True, immutable=True)}", uri=True, timeout=0
        )
        try:
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if primary_code(exc) == NOTADB or "not a database" in str(exc):
            raise CorruptStoreError(f"{path} is not an SQLite database; {_RESTORE}") from exc
        if side_files:
            return
        raise CorruptStoreError(f"{path} cannot be read as a database ({exc}); {_RESTORE}") from exc
    if not side_files:
        _check_length(path, page_size, pages, size)


def _check_length(path: Path, page_size: int, pages: int, size: int) -> None:
    """A file shorter than the pages its header counts was truncated (copied partly, cut
    off); only checked when no WAL or journal holds part of the truth."""
    if pages > 0 and pages * page_size > size:
        raise CorruptStoreError(
            f"{path} is truncated: its header counts {pages * page_size} bytes, the file has "
            f"{size}; {_RESTORE}"
        )


def store_error(exc: BaseException, path: Path, *, writing: bool) -> StoreError:
    """The :class:`StoreError` subclass for a SQLite or OS error on ``path``, one line."""
    if isinstance(exc, StoreError):
        return exc
    code = primary_code(exc)
    detail = str(exc) or type(exc).__name__
    name = getattr(exc, "sqlite_errorname", None)
    if name and code in STORAGE_CODES:
        detail = f"{detail}, {name}"
    if code in (NOTADB, CORRUPT):
        return CorruptStoreError(f"{path} is damaged or not an SQLite database ({detail}); "
                                 f"{_RESTORE}")  # fmt: skip
    if code == READONLY or (writing and code == CANTOPEN and _read_only_place(path)):
        return ReadOnlyStoreError(
            f"{path} cannot be written ({detail}): the file, its folder or its mount is "
            "read-only; TelemetryStore can still read it, or copy it to a writable folder"
        )
    if code == FULL or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG)):
        return StoreWriteError(f"cannot write {path}: the disk is full or the file is too "
                               f"large ({detail}); free space, then restart the run")  # fmt: skip
    if code == CANTOPEN:
        return StoreAccessError(
            f"{path} cannot be opened ({detail}); check that its folder exists and that you "
            "may read and write both"
        )
    if writing and (code in STORAGE_CODES or isinstance(exc, OSError)):
        return StoreWriteError(
            f"cannot write {path} ({detail}): the disk failed, is full, or the file is over "
            "a size limit; fix that, then restart the run"
        )
    if code in STORAGE_CODES or isinstance(exc, OSError):
        return StoreAccessError(f"{path} cannot be read ({detail}); check the disk and the "
                                "file's permissions")  # fmt: skip
    what = "writing" if writing else "reading"
    return StoreError(f"{what} {path} failed: {detail}")


def _read_only_place(path: Path) -> bool:
    """The file exists but it, its folder or its file system cannot be written."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
        return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
    except OSError:
        return False


def connect_reader(path: Path) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection that has read the schema, and whether it is ``immutable``.

    ``mode=ro`` first; when the ``-shm`` file cannot be made (read-only folder or mount)
    the file is opened ``immutable``. Errors are :class:`StoreError` subclasses.
    """
    immutable = False
    while True:
        conn: sqlite3.Connection | None = None
        try:
            conn = schema.connect(path, readonly=True, immutable=immutable)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn, immutable
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if not immutable and primary_code(exc) in (READONLY, CANTOPEN) and path.is_file():
                immutable = True
                continue
            raise store_error(exc, path, writing=False) from exc


@contextlib.contextmanager
def no_side_files_if_refused(path: Path) -> Iterator[None]:
    """Remove the ``-wal`` / ``-shm`` files that opening made if the file is then refused
    (corrupt, newer, unreadable), so refusing a file leaves its folder as it was."""
    sides = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    existed = [p.exists() for p in sides]
    try:
        yield
    except StoreError:  # corrupt, newer, unreadable, another application's
        wal = sides[0]
        if not any(existed) and (not wal.exists() or wal.stat().st_size == 0):
            for side in sides:
                with contextlib.suppress(OSError):
                    side.unlink()
        raise


def existing_db(db: object) -> Path:
    """The absolute path of an existing, non-empty database file, for a caller that only
    reads or controls runs in it: such a caller must not create a database (an empty file
    would be made one) where the user mistyped a path."""
    if not isinstance(db, str | os.PathLike):
        raise TypeError(f"db must be a path, not {type(db).__name__}")
    path = Path(db).expanduser()
    if path.is_dir():
        raise StoreAccessError(f"db={os.fspath(db)!r} is a folder; pass the path of a .sqlite file")
    if not path.exists():
        raise UnknownRunError(f"no database at {os.fspath(db)!r}", path=path)
    if path.stat().st_size == 0 and not path.with_name(path.name + "-wal").exists():
        raise UnknownRunError(f"{os.fspath(db)!r} is an empty file: it holds no runs", path=path)
    return path.resolve()
