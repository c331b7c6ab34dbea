"""Directory archives compressed file by file: compressed while a dump tool writes them, and
served decompressed through named pipes while a restore tool reads them.

Why: pg_dump before 16 writes a directory archive (``-Fd``, the format ``-j`` needs) either
uncompressed or gzipped inside its own processes, and its pg_restore reads only those two. A
separate zstd per file keeps the dump's cores for the dump and writes a smaller archive than
gzip; these helpers make that work without a second pass over the data and without ever
holding a whole decompressed copy on disk:

- :class:`CompressWhileWritten` follows each data file as the tool appends to it (the page
  cache serves the bytes just written), pipes them into its own compressor and deletes the
  plain file once the tool has finished it. At most ``jobs`` files are followed at a time.
- :func:`served_decompressed` lays out a private folder where every compressed file is a
  named pipe fed by its own decompressor, so a restore tool opening ``1234.dat`` reads the
  plain stream of ``1234.dat.zst``, in any order and in parallel.
"""

from __future__ import annotations

import contextlib
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
    FILE_MODE,
    Compressor,
    child_env,
    kill_quietly,
    pipeline_error,
    private_dir,
)
from abmigrate.errors import BackupError

__all__ = ["CompressWhileWritten", "served_decompressed"]

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
                    if exited or any(future.done() and future.exception() for future in futures):
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
        ):
            process = subprocess.Popen(
                self.compressor.compress_one_argv,
                stdin=subprocess.PIPE,
                stdout=packed,
                stderr=errors,
                env=child_env({}),
            )
            with self._lock:
                self._processes.append(process)
            assert process.stdin is not None
            try:
                while not self._aborted.is_set():
                    complete = self._complete(name)  # before the read: then EOF is the end
                    chunk = plain.read(_CHUNK)
                    if chunk:
                        process.stdin.write(chunk)
                    elif complete:
                        break
                    else:
                        self._aborted.wait(_POLL_S)
                process.stdin.close()
            except BrokenPipeError:
                pass  # the compressor failed: its own message says why
            finally:
                process.wait()
            if self._aborted.is_set():
                return
            if process.returncode != 0:
                raise pipeline_error(
                    [(self.compressor.compress_one_argv, process.returncode, errors)], self.what
                )
        source.unlink()


@contextlib.contextmanager
def _private_output(path: Path) -> Iterator[IO[bytes]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        yield handle


@contextlib.contextmanager
def served_decompressed(
    archive: Path, names: Sequence[str], compressor: Compressor, what: str
) -> Iterator[Path]:
    """A private folder mirroring the directory archive ``archive`` (its files ``names``,
    relative to it), where each compressed file is a named pipe streaming its plain bytes.

    On leaving, decompressors nobody read from are stopped, and a decompressor that failed
    (a damaged file) raises a BackupError naming the file.
    """
    processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
    with private_dir("abmigrate-restore-") as stage:
        try:
            for name in names:
                source = archive / name
                if not name.endswith(compressor.extension):
                    shutil.copyfile(source, stage / name)
                    continue
                pipe = stage / name[: -len(compressor.extension)]
                os.mkfifo(pipe, FILE_MODE)
                # Opened read-write, the pipe needs no reader yet: the decompressor fills its
                # buffer and waits; the reader opens it whenever it reaches that table.
                fd = os.open(pipe, os.O_RDWR)
                errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
                try:
                    process = subprocess.Popen(
                        [*compressor.decompress_argv, str(source)],
                        stdin=subprocess.DEVNULL,
                        stdout=fd,
                        stderr=errors,
                        env=child_env({}),
                    )
                except OSError as exc:
                    errors.close()
                    raise BackupError(f"cannot run {compressor.name}: {exc.strerror}") from None
                finally:
                    os.close(fd)
                processes.append((name, process, errors))
            yield stage
            failed: list[tuple[Sequence[str], int, IO[bytes]]] = [
                ([compressor.name, name], process.returncode, output)
                for name, process, output in processes
                if process.poll() is not None and process.returncode != 0
            ]
            if failed:
                raise pipeline_error(failed[:1], f"{what}: decompressing {failed[0][0][1]}")
        finally:
            for _, process, output in processes:
                kill_quietly(process)  # still running: never read (the reader stopped early)
                output.close()
