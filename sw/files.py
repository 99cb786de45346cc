"""Files and directories written so that they are complete or absent, and
never replace anything they were not asked to replace.

Everything is written under a temporary name beside the target, then moved
into place with one rename. Without ``overwrite`` that rename refuses an
existing target (Linux ``renameat2(RENAME_NOREPLACE)``, or a hard link for
files), so something that appears at the target during a write is never
replaced: the write fails with `FileExistsError` instead. With ``overwrite``
a directory is swapped in atomically (``RENAME_EXCHANGE``) and what it
replaced is checked before it is deleted.

Temporary names carry the writer's process id (``.NAME.oeie-tmp-PID-*``):
a writer killed half-way (SIGKILL, power loss) leaves one behind, and the
next write of the same target removes those of processes that are gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_file", "save_figure", "atomic_directory", "umask", "output_path", "OutputExistsError",
           "rename_noreplace", "rename_exchange", "remove_stale_temporaries"]

TMP_TAG = "oeie-tmp"


class OutputExistsError(FileExistsError):
    """The output path exists and replacing it was not asked for (or is not
    allowed). `filename` is the path; command lines name their own flag."""

    def __init__(self, path, reason: str = "exists"):
        super().__init__(errno.EEXIST, reason, str(path))
        self.reason = reason

    def __str__(self):
        return f"{self.filename} {self.reason}"


def umask() -> int:
    """The process's umask (reading it means setting it; it is put back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- renames that do not replace, or replace atomically ----------------------

_AT_FDCWD = -100
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _renameat2(src, dst, flags: int) -> bool:
    """``renameat2(2)``; False where the system or file system lacks it."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(e, os.strerror(e), str(src), None, str(dst))


def rename_noreplace(src, dst):
    """Move `src` to `dst`, failing with `OutputExistsError` if `dst` exists
    at that moment, whatever it is."""
    try:
        if _renameat2(src, dst, _RENAME_NOREPLACE):
            return
    except FileExistsError:
        raise OutputExistsError(dst) from None
    if os.path.isdir(src):
        # claim the name with an exclusive mkdir, then rename over the (empty)
        # claim: a rename onto a directory someone filled meanwhile fails
        try:
            os.mkdir(dst)
        except FileExistsError:
            raise OutputExistsError(dst) from None
        try:
            os.rename(src, dst)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.rmdir(dst)
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise OutputExistsError(dst) from None
            raise
    else:
        try:
            os.link(src, dst)
        except FileExistsError:
            raise OutputExistsError(dst) from None
        os.unlink(src)


def rename_exchange(a, b) -> bool:
    """Swap `a` and `b` atomically; False where the system cannot (the caller
    then falls back to two renames)."""
    return _renameat2(a, b, _RENAME_EXCHANGE)


# ---- temporaries -------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """Remove temporaries of `path` left by writers that no longer run."""
    path = Path(path)
    removed = []
    prefix = f".{path.name}.{TMP_TAG}-"
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for p in candidates:
        pid = p.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed.append(p)
    return removed


def _tmp_prefix(path: Path, kind: str = "") -> str:
    return f".{path.name}.{TMP_TAG}-{os.getpid()}-{kind}"


def output_path(path, *, overwrite: bool, kind: str = "file") -> Path:
    """Check an output path before any work: an absolute path whose parent
    can hold it, that is not the current directory or one of its parents,
    and that either does not exist or may be replaced (``overwrite``, and of
    the right kind). Raises `OutputExistsError` or `IsADirectoryError`."""
    path = Path(os.path.abspath(path))
    cwd = Path(os.getcwd())
    if path == cwd or path in cwd.parents:
        raise OutputExistsError(path, "is the current directory or contains it; not replacing it")
    if path.is_dir() and kind == "file":
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file name", str(path))
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise OutputExistsError(path)
        if kind == "directory" and not path.is_dir():
            raise OutputExistsError(path, "exists and is not a directory; not replacing it")
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is not a directory", str(path.parent))
    return path


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb", *, overwrite: bool = True):
    """Open a temporary file beside `path` for writing; when the block ends
    without an exception it takes `path`'s place, with the permissions a
    plain `open` would have given it. Without `overwrite`, an existing `path`
    (checked first, and again at the final rename) raises
    `OutputExistsError`. On an exception the temporary is removed."""
    path = output_path(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~umask())          # mkstemp makes it private
        if overwrite:
            os.replace(tmp, path)
        else:
            rename_noreplace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_figure(fig, path, dpi: int = 120):
    """Write a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


@contextlib.contextmanager
def atomic_directory(path, *, overwrite: bool = False, replaceable=lambda p: True):
    """Yield a new temporary directory beside `path` to fill; when the block
    ends without an exception it takes `path`'s place.

    Without `overwrite`, a `path` that exists at the final rename (even one
    that appeared during the write) raises `OutputExistsError` and nothing is
    touched. With `overwrite`, an existing directory is swapped out
    atomically and deleted only if ``replaceable(old)`` says so; otherwise it
    is swapped back and `OutputExistsError` is raised."""
    path = output_path(path, overwrite=overwrite, kind="directory")
    if overwrite and path.exists() and not replaceable(path):
        raise OutputExistsError(path, "exists and is not an OpenEIE image; not replacing it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), dir=path.parent))
    os.chmod(tmp, 0o777 & ~umask())              # mkdtemp makes it private
    old = None                                   # where the replaced directory is, once swapped out
    try:
        yield tmp
        try:
            rename_noreplace(tmp, path)
            return
        except OutputExistsError:
            if not overwrite:
                raise
        if rename_exchange(tmp, path):
            old = tmp                            # the previous contents of `path` are now here
            if not replaceable(old):
                rename_exchange(tmp, path)       # put it back
                old = None
                raise OutputExistsError(path, "exists and is not an OpenEIE image; not replacing it")
        else:
            holder = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path, "old-"), dir=path.parent))
            os.rename(path, holder / "old")
            old = holder
            if not replaceable(holder / "old"):
                os.rename(holder / "old", path)
                old = None
                shutil.rmtree(holder, ignore_errors=True)
                raise OutputExistsError(path, "exists and is not an OpenEIE image; not replacing it")
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(holder / "old", path)
                old = None
                shutil.rmtree(holder, ignore_errors=True)
                raise
        shutil.rmtree(old, ignore_errors=True)
        old = None
    except BaseException:
        if old is None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
