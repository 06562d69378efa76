"""One grid at a time per results folder: a lock file holding the owner's pid, removed when the grid ends.

`FolderLock(folder)` creates `<folder>/.run_grid.lock` atomically (it fails if the file exists) with the pid,
host and start time of its process. A second process refuses to start while the owner is alive; a lock left
by a process that is gone (killed by SIGKILL, a machine restart) is taken over. Only locks of the same host
can be checked: a lock of another host is refused with its details (delete the file if that grid is over).

Example:

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with FolderLock(folder) as lock:
...     lock.path.name, lock.path.exists()
('.run_grid.lock', True)
>>> lock.path.exists()
False
"""

import json
import os
import secrets
import socket
import time
from pathlib import Path

from keras_ssl_lt.experiments.records import SetupError

__all__ = ["LOCK_NAME", "FolderLock"]

LOCK_NAME = ".run_grid.lock"
_HELD = set()  # tokens of the locks this process holds (a lock of our own pid that is not here is stale)


def _proc_start(pid):
    """The start time of process `pid` in clock ticks since boot (Linux), or None: it tells a reused pid apart."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
        return int(text.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


class FolderLock:
    """A context manager that holds `<folder>/.run_grid.lock` (see the module's docstring).

    Args:
        folder: the results folder (created when needed).

    Raises `SetupError` on entry when another live process holds the lock.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.token = None

    def _owner_text(self, owner):
        started = owner.get("started")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
        return f"pid {owner.get('pid')} on host {owner.get('host')!r}, since {when}"

    def _is_stale(self, owner):
        """True when the owner recorded in the lock is certainly gone."""
        pid, host = owner.get("pid"), owner.get("host")
        if not isinstance(pid, int) or host != socket.gethostname():
            return False
        if pid == os.getpid():
            return owner.get("token") not in _HELD  # our pid, but not our lock: an earlier process's
        if not _alive(pid):
            return True
        start = owner.get("proc_start")
        now = _proc_start(pid)
        return start is not None and now is not None and start != now  # the pid was reused

    def holder(self):
        """A description of the live process holding the lock, or None when it is free (or stale)."""
        owner = self._read()
        if owner is None or (owner and self._is_stale(owner)):
            return None
        return self._owner_text(owner) if owner else "a process that is writing the lock now"

    def _read(self):
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _create(self, text):
        """Create the lock file with `text` atomically; False when it exists."""
        tmp = self.folder / f"{LOCK_NAME}.{os.getpid()}.{secrets.token_hex(4)}.part"
        tmp.write_text(text, encoding="utf-8")
        try:
            os.link(tmp, self.path)  # atomic, and never replaces an existing lock
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system: exclusive creation instead
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def acquire(self):
        if self.folder.exists() and not self.folder.is_dir():
            raise SetupError(f"the output folder {str(self.folder)!r} is a file, not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "proc_start": _proc_start(os.getpid()),
            "token": token,
        }
        text = json.dumps(me)
        for _ in range(20):
            if self._create(text):
                self.token = token
                _HELD.add(token)
                return self
            owner = self._read()
            if owner is None:  # released meanwhile
                continue
            if owner == {}:  # being written or unreadable: wait a moment, then judge by age
                if time.time() - self.path.stat().st_mtime < 5.0:
                    time.sleep(0.1)
                    continue
            elif not self._is_stale(owner):
                raise self._held_error(self._owner_text(owner))
            # Stale: move it aside, check that it is still the stale one (not a lock just taken), drop it.
            aside = self.folder / f"{LOCK_NAME}.stale.{secrets.token_hex(4)}"
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue
            try:
                moved = json.loads(aside.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                moved = {}
            if moved != owner and owner != {}:  # another process took it over in between: give it back
                try:
                    os.link(aside, self.path)
                except FileExistsError:
                    pass
            aside.unlink(missing_ok=True)
        raise SetupError(f"could not take the lock {self.path} (it keeps changing): is another grid starting?")

    def _held_error(self, owner_text):
        return SetupError(
            f"another grid runs into {self.folder} ({owner_text}; lock {self.path}): wait for it to finish, "
            "or use another --out; if that process is gone, delete the lock file"
        )

    def check_free(self):
        """Raise `SetupError` when a live process holds the lock (nothing is taken)."""
        held = self.holder()
        if held is not None:
            raise self._held_error(held)

    def release(self):
        if self.token is None:
            return
        owner = self._read()
        if isinstance(owner, dict) and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)
        _HELD.discard(self.token)
        self.token = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
