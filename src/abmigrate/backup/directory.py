"""Directory archives compressed file by file: compressed while a dump tool writes them, and
decompressed side by side for a restore tool.

Why: pg_dump before 16 writes a directory archive (``-Fd``, the format ``-j`` needs) either
uncompressed or gzipped inside its own processes, and its pg_restore reads only those two. A
separate zstd per file keeps the dump's cores for the dump and writes a smaller archive than
gzip; these helpers make that work without a second pass over the data at backup time:

- :class:`CompressWhileWritten` follows each data file as the tool appends to it (the page
  cache serves the bytes just written), pipes them into its own compressor and deletes the
  plain file once the tool has finished it. At most ``jobs`` files are followed at a time.
- :func:`decompressed_copy` decompresses the files side by side into a private folder beside
  the backup, removed afterwards: pg_restore reads only regular files (named pipes are
  refused, "is not a regular file"), and ``-j`` needs them to find its way around.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from abmigrate.backup.base import (
    DIR_MODE,
    FILE_MODE,
    Compressor,
    child_env,
    kill_quietly,
    pipeline_error,
    run_pipeline,
)
from abmigrate.errors import BackupError

__all__ = ["CompressWhileWritten", "decompressed_copy"]

# Room a decompressed copy may need, per compressed byte: zstd -1 and gzip shrink table data
# 3-8x; more than that is rare, and then the copy stops on a full disk, leaving the rest.
_EXPANSION = 10
_SPARE = 1 << 30

_CHUNK = 1 << 20
# How long a follower waits for more bytes before looking again (the tool is still writing).
_POLL_S = 0.02


class CompressWhileWritten:
    """Compress the data files (``*.dat``) a tool writes into ``folder`` while it writes them.

    The tool's side tells which files are complete: :meth:`finished` for one file (pg_dump
    names each finished item in its verbose output), :meth:`tool_exited` for all of them.
    Run :meth:`run` in its own thread; it returns once every file is compressed and raises
    the first failure. :meth:`abort` stops everything (the partial files are the caller's to
    delete).
    """

    def __init__(self, folder: Path, compressor: Compressor, jobs: int, what: str) -> None:
        self.folder = folder
        self.compressor = compressor
        self.jobs = jobs
        self.what = what
        self._done: set[str] = set()
        self._exited = threading.Event()
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[bytes]] = []
        # Each compressed file's sha256 and size, taken as it was written and tested.
        self.tested: dict[str, tuple[str, int]] = {}

    def finished(self, name: str) -> None:
        with self._lock:
            self._done.add(name)

    def tool_exited(self) -> None:
        self._exited.set()

    def abort(self) -> None:
        self._aborted.set()
        self._exited.set()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            kill_quietly(process)

    def _complete(self, name: str) -> bool:
        if self._exited.is_set():
            return True
        with self._lock:
            return name in self._done

    def run(self) -> None:
        claimed: set[str] = set()
        futures: list[Future[None]] = []
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="abmigrate-compress") as pool:
            try:
                while True:
                    exited = self._exited.is_set()  # before the scan: no file may slip by
                    for name in self._data_files():
                        if name not in claimed:
                            claimed.add(name)
                            futures.append(pool.submit(self._compress, name))
                    failed = [f for f in futures if f.done() and f.exception() is not None]
                    if failed:
                        self.abort()  # the other files are not worth finishing
                        failed[0].result()
                    if exited:
                        break
                    self._exited.wait(_POLL_S * 5)
                for future in futures:
                    future.result()
            except BaseException:
                self.abort()
                raise

    def _data_files(self) -> list[str]:
        try:
            names = [entry.name for entry in os.scandir(self.folder) if entry.is_file()]
        except FileNotFoundError:  # the tool has not made its folder yet
            return []
        return sorted(name for name in names if name.endswith(".dat") and name != "toc.dat")

    def _compress(self, name: str) -> None:
        source = self.folder / name
        target = self.folder / (name + self.compressor.extension)
        with (
            source.open("rb", buffering=0) as plain,
            _private_output(target) as packed,
            tempfile.TemporaryFile() as errors,
            tempfile.TemporaryFile() as test_errors,
        ):
            process = subprocess.Popen(
                self.compressor.compress_one_argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=child_env({}),
            )
            tester = subprocess.Popen(
                self.compressor.test_stream_argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=test_errors,
                env=child_env({}),
            )
            with self._lock:
                self._processes.extend((process, tester))
            assert process.stdin is not None and process.stdout is not None
            writer = _Tee(process.stdout, packed, tester, process)
            writing = threading.Thread(target=writer.run, name="abmigrate-write")
            writing.start()
            try:
                while not self._aborted.is_set():
                    complete = self._complete(name)  # before the read: then EOF is the end
                    # From the page cache to the compressor's pipe in the kernel (the bytes
                    # never pass through this process): 0 is the end of what is written.
                    if os.sendfile(process.stdin.fileno(), plain.fileno(), None, _CHUNK):
                        continue
                    if complete:
                        break
                    self._aborted.wait(_POLL_S)
            except BrokenPipeError:
                pass  # the compressor failed (or the writer stopped it): said below
            finally:
                # Closed on every path (a compressor that died leaves the pipe broken:
                # flushing it then fails again), so no pipe outlives the backup.
                with contextlib.suppress(OSError):
                    process.stdin.close()
                process.wait()
                writing.join()
                tester.wait()
            if self._aborted.is_set():
                return
            if writer.failure is not None:
                raise _write_error(writer.failure, target, self.what)
            if process.returncode != 0:
                raise pipeline_error(
                    [(self.compressor.compress_one_argv, process.returncode, errors)], self.what
                )
            if tester.returncode != 0:
                raise pipeline_error(
                    [(self.compressor.test_stream_argv, tester.returncode, test_errors)],
                    f"{self.compressor.name} integrity test of {target.name}",
                )
        with self._lock:
            self.tested[target.name] = (writer.sha256.hexdigest(), writer.size)
        source.unlink()


class _Tee:
    """The compressor's output, written to the archive file, hashed, and fed to a tester
    (``zstd -t``) in the same pass: the backup is verified as it is written, not read back
    afterwards. A write that fails stops the compressor (and so the file's feeder)."""

    def __init__(
        self,
        source: IO[bytes],
        target: IO[bytes],
        tester: subprocess.Popen[bytes],
        compressor: subprocess.Popen[bytes],
    ) -> None:
        self.source = source
        self.target = target
        self.tester = tester
        self.compressor = compressor
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.failure: OSError | None = None

    def run(self) -> None:
        test_in = self.tester.stdin
        assert test_in is not None
        try:
            with self.source:
                while chunk := self.source.read1(_CHUNK):  # type: ignore[attr-defined]
                    if self.failure is not None:
                        continue  # drained, so the compressor can exit
                    try:
                        _write_all(self.target.fileno(), chunk)
                    except OSError as exc:
                        self.failure = exc
                        kill_quietly(self.compressor)
                        continue
                    self.sha256.update(chunk)
                    self.size += len(chunk)
                    if test_in is not None:
                        try:
                            test_in.write(chunk)
                        except BrokenPipeError:
                            test_in = None  # the tester failed: its exit status says why
        except OSError as exc:
            self.failure = self.failure or exc
        finally:
            with contextlib.suppress(OSError):
                assert self.tester.stdin is not None
                self.tester.stdin.close()


def _write_all(fd: int, chunk: bytes) -> None:
    # Straight to the file (no buffer left to flush, and fail, when it is closed).
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


def _write_error(exc: OSError, target: Path, what: str) -> BackupError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return BackupError(
            f"{what} failed: no space left ({target.name}: {exc.strerror})",
            hint="free disk space where the backup is written, or set backup_dir elsewhere",
        )
    return BackupError(f"{what} failed: writing {target.name}: {exc.strerror}")


@contextlib.contextmanager
def _private_output(path: Path) -> Iterator[IO[bytes]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        yield handle


@contextlib.contextmanager
def decompressed_copy(
    archive: Path, names: Sequence[str], compressor: Compressor, where: Path, jobs: int
) -> Iterator[Path | None]:
    """A private folder inside ``where`` (else the temporary folder) holding the archive with
    every file decompressed (``jobs`` decompressors side by side), removed on leaving; None
    when neither can take it (not writable, or less free space than the copy may need plus
    1 GiB to spare)."""
    packed = sum((archive / name).stat().st_size for name in names)
    folder: Path | None = None
    for place in (where, Path(tempfile.gettempdir())):  # beside the backup, else in TMPDIR
        try:
            if shutil.disk_usage(place).free >= packed * _EXPANSION + _SPARE:
                folder = Path(
                    tempfile.mkdtemp(prefix=f".partial-restore-{os.getpid()}-", dir=place)
                )
                break
        except OSError:
            continue
    if folder is None:
        yield None
        return
    # The name ends with a random part, not the pid: rename so `backup`'s sweep of stale
    # partial folders (which reads the pid after the last dash) knows whose it is.
    named = folder.with_name(f"{folder.name}-{os.getpid()}")
    folder.rename(named)
    try:
        named.chmod(DIR_MODE)

        def unpack(name: str) -> None:
            source = archive / name
            if not name.endswith(compressor.extension):
                shutil.copyfile(source, named / name)
                return
            target = named / name[: -len(compressor.extension)]
            with source.open("rb") as stream, _private_output(target) as out:
                run_pipeline(
                    [compressor.decompress_argv],
                    env=child_env({}),
                    stdin=stream,
                    stdout=out,
                    what=f"decompressing {name}",
                )

        with ThreadPoolExecutor(jobs, thread_name_prefix="abmigrate-decompress") as pool:
            for _ in pool.map(unpack, names):
                pass
        yield named
    finally:
        shutil.rmtree(named, ignore_errors=True)
