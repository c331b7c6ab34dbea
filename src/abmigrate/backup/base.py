"""What every dialect's backup module provides, and the external-tool plumbing they share.

A dialect module dumps a database into a backup folder (through its own well-kept tool or
API), checks an archive without restoring it, restores it, and measures per-table figures
(row count + a data checksum) that a restore test compares.

Tools run as child processes whose arguments never carry a password: each dialect passes
credentials through the child's environment or a private 0600 file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from abmigrate.errors import BackupError

__all__ = [
    "Backend",
    "Compressor",
    "DumpOutcome",
    "TableStats",
    "choose_compressor",
    "compressor_named",
    "dump_jobs",
    "pipeline_error",
    "private_dir",
    "require_tool",
    "run_pipeline",
    "tool_version",
]

FILE_MODE = 0o600
DIR_MODE = 0o700

_NO_SPACE = (
    "no space left on device",
    "file too large",
    "disk quota exceeded",
    "file size limit exceeded",
)


@dataclass(frozen=True)
class TableStats:
    """Rows and an order-independent checksum of a table's data."""

    rows: int
    checksum: str
    # Set by a restore test when the figure recorded at backup time cannot be reproduced
    # (it was taken with an older method); the reason, and only the row count is compared.
    unchecked: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"rows": self.rows, "checksum": self.checksum}


@dataclass
class DumpOutcome:
    """What a dialect's dump produced inside the (still temporary) backup folder."""

    files: list[str]
    format: str
    server_version: str
    revisions: list[str]
    tables: dict[str, TableStats]
    checksum_method: str
    tools: dict[str, str] = field(default_factory=dict)
    # Files whose bytes were hashed and test-decompressed as they were written (name: sha256
    # and size): the backup need not read them back.
    tested: dict[str, tuple[str, int]] = field(default_factory=dict)


class Backend(Protocol):
    dialect: str

    def dump(self, url: str, folder: Path, compressor: Compressor) -> DumpOutcome:
        """Write the database's backup into ``folder``; figures consistent with the dump."""
        ...

    def check_archive(self, folder: Path, files: Sequence[str], compressor: Compressor) -> str:
        """Read the archive through (no database needed); a summary, or BackupError."""
        ...

    def restore(self, folder: Path, files: Sequence[str], compressor: Compressor, url: str) -> None:
        """Replace the database at ``url`` with the archive's content."""
        ...

    def table_stats(
        self, url: str, recorded: Mapping[str, str] | None = None
    ) -> dict[str, TableStats]:
        """Per-table figures of the live database, computed the same way as at backup time.

        ``recorded`` maps tables to the checksums a backup recorded; a backend whose method
        changed computes each table's figure with the method that made the recorded one."""
        ...

    def is_empty(self, url: str) -> bool: ...


# --------------------------------------------------------------------------- tools


def require_tool(name: str, hint: str, *, alternatives: Sequence[str] = ()) -> str:
    """The path of the first of ``name``/``alternatives`` on PATH, or a BackupError saying
    what to install."""
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    names = " or ".join((name, *alternatives))
    raise BackupError(f"{names} not found on PATH", hint=hint)


def tool_version(path: str) -> str:
    """The version a tool reports with --version (first dotted number), or 'unknown'."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return match.group(1) if match else "unknown"


@dataclass(frozen=True)
class Compressor:
    """A streaming compressor run as a child process."""

    name: str
    level: int
    extension: str
    path: str

    @property
    def compress_argv(self) -> list[str]:
        if self.name == "zstd":
            # -T0: one worker per core, so compression keeps up with the dump.
            return [self.path, "-q", "-c", "-T0", f"-{self.level}"]
        return [self.path, "-c", f"-{self.level}"]

    @property
    def compress_one_argv(self) -> list[str]:
        """One thread: for several files compressed side by side (one process each)."""
        return (
            [self.path, "-q", "-c", f"-{self.level}"]
            if self.name == "zstd"
            else [
                self.path,
                "-c",
                f"-{self.level}",
            ]
        )

    @property
    def decompress_argv(self) -> list[str]:
        return [self.path, "-q", "-d", "-c"] if self.name == "zstd" else [self.path, "-d", "-c"]

    @property
    def test_stream_argv(self) -> list[str]:
        """Test what arrives on stdin (the archive as it is written), output nowhere."""
        return [self.path, "-q", "-t"] if self.name == "zstd" else [self.path, "-t"]

    def test_argv(self, path: Path) -> list[str]:
        # Both formats carry a checksum of the content: -t catches truncation and bit flips.
        return (
            [self.path, "-q", "-t", str(path)]
            if self.name == "zstd"
            else [
                self.path,
                "-t",
                str(path),
            ]
        )

    def describe(self) -> str:
        return f"{self.name} -{self.level}"


def choose_compressor() -> Compressor:
    """zstd -1 when installed (measured fastest at a smaller size than gzip), else gzip -1."""
    zstd = shutil.which("zstd")
    if zstd:
        return Compressor("zstd", 1, ".zst", zstd)
    gzip = require_tool("gzip", hint="install zstd (apt install zstd) or gzip")
    return Compressor("gzip", 1, ".gz", gzip)


def compressor_named(name: str, level: int) -> Compressor:
    """The compressor a manifest names, for reading the backup back."""
    if name not in ("zstd", "gzip"):
        raise BackupError(f"unknown compression {name!r} in the manifest")
    path = require_tool(name, hint=f"install {name} to read this backup (apt install {name})")
    return Compressor(name, level, ".zst" if name == "zstd" else ".gz", path)


# --------------------------------------------------------------------------- processes


def dump_jobs() -> int:
    """Parallel jobs for a dump or restore tool: one per core this process may use, at least
    two (one job still waits on the server while the other works), at most eight."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(2, min(cores, 8))


@contextmanager
def private_dir(prefix: str = "abmigrate-") -> Iterator[Path]:
    """A 0700 temporary folder (for password files and scratch copies), removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        folder.chmod(DIR_MODE)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus ``extra``; the password lives only in the child's."""
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env


def run_pipeline(
    commands: Sequence[Sequence[str]],
    *,
    env: Mapping[str, str],
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | int | None = None,
    what: str,
    secrets: Sequence[str] = (),
    reader_may_stop_early: bool = False,
    started: list[subprocess.Popen[bytes]] | None = None,
) -> bytes:
    """Run ``commands`` connected by pipes; raise one clear BackupError when any fails.

    Returns the last command's output when ``stdout`` is None. The error names the failing
    tool and its first meaningful error line, with any of ``secrets`` blanked out. With
    ``reader_may_stop_early`` (``pg_restore -l`` reads only the head of the archive), a writer
    cut off by a broken pipe is not a failure when the last command succeeded. ``started``
    receives the processes as they start, so another thread can stop them.
    """
    processes: list[subprocess.Popen[bytes]] = []
    errors: list[IO[bytes]] = []
    previous: IO[bytes] | None = stdin
    try:
        for index, argv in enumerate(commands):
            last = index == len(commands) - 1
            error_file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
            errors.append(error_file)
            try:
                process = subprocess.Popen(
                    list(argv),
                    stdin=previous if previous is not None else subprocess.DEVNULL,
                    stdout=(stdout if stdout is not None else subprocess.PIPE)
                    if last
                    else subprocess.PIPE,
                    stderr=error_file,
                    env=dict(env),
                )
            except OSError as exc:
                raise BackupError(f"cannot run {Path(argv[0]).name}: {exc.strerror}") from None
            if previous is not None and previous is not stdin:
                previous.close()  # the child holds it now; EOF/SIGPIPE must reach the writer
            processes.append(process)
            if started is not None:
                started.append(process)
            previous = process.stdout
        output = b""
        if stdout is None and processes[-1].stdout is not None:
            output = processes[-1].stdout.read()
        for process in processes:
            process.wait()
        failures = [
            (argv, process.returncode, error_file)
            for argv, process, error_file in zip(commands, processes, errors, strict=True)
            if process.returncode != 0
        ]
        if reader_may_stop_early and processes[-1].returncode == 0:
            failures = [item for item in failures if item[1] != -signal.SIGPIPE]
        if failures:
            raise pipeline_error(failures, what, secrets)
        return output
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for error_file in errors:
            error_file.close()


def pipeline_error(
    failures: Sequence[tuple[Sequence[str], int, IO[bytes]]],
    what: str,
    secrets: Sequence[str] = (),
) -> BackupError:
    """One BackupError for failed tools: (argv, exit code, their stderr) each."""
    described: list[tuple[str, str]] = []
    for argv, code, errors_of in failures:
        errors_of.seek(0)
        text = errors_of.read().decode(errors="replace")
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        if code == -signal.SIGXFSZ:
            line = "file size limit exceeded"
        else:
            line = _first_error_line(text) or (
                f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            )
        described.append((Path(argv[0]).name, line))
    # A failing reader makes every writer before it fail with a broken pipe: the most
    # downstream failure that is not a broken pipe is the cause.
    for tool, line in reversed(described):
        if any(marker in line.lower() for marker in _NO_SPACE):
            return BackupError(
                f"{what} failed: no space left ({tool}: {line})",
                hint="free disk space where the backup is written, or set backup_dir elsewhere",
            )
    meaningful = [item for item in described if "broken pipe" not in item[1].lower()]
    tool, line = (meaningful or described)[-1]
    return BackupError(f"{what} failed: {tool}: {line}")


def _first_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return re.sub(r"^(pg_\w+|psql|mariadb(-dump)?|mysql(dump)?|zstd|gzip):\s*", "", line)
    return lines[0] if lines else ""


def kill_quietly(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
