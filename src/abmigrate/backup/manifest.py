"""The manifest beside every backup, and the on-disk layout of the backup folder.

Layout::

    <backup_dir>/                 0700
      <environment>/              0700
        <id>/                     0700   a complete, checksummed backup
          manifest.json           0600
          data.dump.zst           0600   (name depends on the dialect and compressor)
        .partial-<id>-<pid>/             a backup being written (or interrupted): never listed

A backup is written inside a ``.partial-`` folder and renamed to its id only after every file
has been checksummed and the archive read back, so an interrupted backup never looks like one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from abmigrate.backup.base import DIR_MODE, FILE_MODE
from abmigrate.errors import BackupError

__all__ = [
    "MANIFEST_NAME",
    "FileEntry",
    "Manifest",
    "find_backup",
    "last_backup",
    "list_manifests",
    "make_private_dir",
    "new_backup_id",
    "remove_stale_partials",
    "sha256_of",
    "write_private_json",
]

MANIFEST_NAME = "manifest.json"
PARTIAL_PREFIX = ".partial-"
FORMAT_VERSION = 1
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")


@dataclass
class FileEntry:
    name: str
    sha256: str
    size: int


@dataclass
class Manifest:
    id: str
    environment: str
    database: str
    dialect: str
    server_version: str
    format: str
    compression: str
    compression_level: int
    revisions: list[str]
    files: list[FileEntry]
    tools: dict[str, str]
    tables: dict[str, dict[str, Any]]
    checksum_method: str
    created_at: str
    duration_s: float
    reason: str = "manual"
    verified: bool = False
    verified_at: str | None = None
    restore_test: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    # Where the manifest was read from (not stored in the file).
    folder: Path | None = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    @property
    def sha256(self) -> str:
        """The file's sha256; for several files (a directory archive), the sha256 of their
        listing as ``sha256sum`` prints it (``<sha256>  <name>`` lines, sorted by name)."""
        if len(self.files) == 1:
            return self.files[0].sha256
        listing = "".join(
            f"{entry.sha256}  {entry.name}\n" for entry in sorted(self.files, key=lambda e: e.name)
        )
        return hashlib.sha256(listing.encode()).hexdigest()

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def restore_tested(self) -> bool:
        return bool(self.restore_test and self.restore_test.get("ok"))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("folder")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> Manifest:
        values = dict(data)
        values["files"] = [FileEntry(**entry) for entry in values.get("files", [])]
        known = set(cls.__dataclass_fields__) - {"folder"}
        return cls(**{key: value for key, value in values.items() if key in known}, folder=folder)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
            return cls.from_json(data, folder)
        except FileNotFoundError:
            raise BackupError(
                f"{folder} is not a backup: it has no {MANIFEST_NAME}",
                hint="list backups with `abmigrate backups`",
            ) from None
        except (OSError, ValueError, TypeError) as exc:
            raise BackupError(f"cannot read {path}: {exc}") from None

    def save(self) -> None:
        assert self.folder is not None
        write_private_json(self.folder / MANIFEST_NAME, self.to_json())

    def summary(self) -> dict[str, Any]:
        """The short record used by `backups`, `status` and the pipeline's output."""
        age_s = (datetime.now(UTC) - self.created).total_seconds()
        return {
            "id": self.id,
            "environment": self.environment,
            "path": str(self.folder) if self.folder else None,
            "created_at": self.created_at,
            "age_s": round(age_s, 1),
            "revisions": self.revisions,
            "size": self.size,
            "sha256": self.sha256,
            "files": [asdict(entry) for entry in self.files],
            "verified": self.verified,
            "restore_tested": self.restore_tested,
            "reason": self.reason,
            "dialect": self.dialect,
            "format": self.format,
            "compression": f"{self.compression} -{self.compression_level}",
        }


def now_iso(*, precise: bool = False) -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds" if precise else "seconds")


def new_backup_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 on the folders this module owns."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        path.chmod(DIR_MODE)
    except OSError as exc:
        raise BackupError(
            f"backup folder {path} is not writable: {exc.strerror}",
            hint="fix its permissions or set backup_dir to a writable folder",
        ) from None


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` (0600) through a temporary name, so a reader never sees half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise BackupError(f"cannot write {path}: {exc.strerror}") from None


def environment_dir(backup_dir: Path, environment: str) -> Path:
    return backup_dir / environment


def list_manifests(backup_dir: Path, environment: str | None = None) -> list[Manifest]:
    """Complete backups, newest first; partial folders and unreadable manifests are skipped."""
    if not backup_dir.is_dir():
        return []
    if environment is not None:
        env_dirs = [environment_dir(backup_dir, environment)]
    else:
        env_dirs = [p for p in backup_dir.iterdir() if p.is_dir()]
    found: list[Manifest] = []
    for env_dir in env_dirs:
        if not env_dir.is_dir():
            continue
        for folder in env_dir.iterdir():
            if not _ID.match(folder.name) or not (folder / MANIFEST_NAME).is_file():
                continue
            with contextlib.suppress(BackupError):
                found.append(Manifest.read(folder))
    found.sort(key=lambda manifest: (manifest.created_at, manifest.id), reverse=True)
    return found


def find_backup(backup_dir: Path, reference: str, environment: str | None = None) -> Manifest:
    """A backup by id (or unique id prefix, or 'latest') or by the path of its folder."""
    candidate = Path(reference)
    if candidate.name == MANIFEST_NAME:
        candidate = candidate.parent
    if candidate.is_dir() and (candidate / MANIFEST_NAME).exists():
        if candidate.name.startswith(PARTIAL_PREFIX):
            raise BackupError(
                f"{candidate} is an unfinished backup (interrupted or still running)",
                hint="it is not a usable backup; take a new one with `abmigrate backup`",
            )
        return Manifest.read(candidate)
    if candidate.is_dir() and candidate.name.startswith(PARTIAL_PREFIX):
        raise BackupError(
            f"{candidate} is an unfinished backup (interrupted or still running)",
            hint="it is not a usable backup; take a new one with `abmigrate backup`",
        )
    manifests = list_manifests(backup_dir, environment)
    if reference == "latest":
        if not manifests:
            raise BackupError(
                f"no backups in {backup_dir}", hint="take one with `abmigrate backup`"
            )
        return manifests[0]
    matches = [m for m in manifests if m.id == reference] or [
        m for m in manifests if m.id.startswith(reference)
    ]
    if not matches and environment is not None:
        return find_backup(backup_dir, reference, None)
    if not matches:
        raise BackupError(
            f"no backup {reference!r} in {backup_dir}",
            hint="list them with `abmigrate backups`, or give the backup folder's path",
        )
    if len({m.id for m in matches}) > 1:
        raise BackupError(
            f"backup id prefix {reference!r} is ambiguous: " + ", ".join(m.id for m in matches[:5]),
            hint="give more characters of the id",
        )
    return matches[0]


def partial_dir(backup_dir: Path, environment: str, backup_id: str) -> Path:
    return environment_dir(backup_dir, environment) / f"{PARTIAL_PREFIX}{backup_id}-{os.getpid()}"


def remove_stale_partials(env_dir: Path) -> list[str]:
    """Remove ``.partial-`` folders left by backups whose process is gone."""
    removed: list[str] = []
    if not env_dir.is_dir():
        return removed
    for folder in env_dir.iterdir():
        if not folder.name.startswith(PARTIAL_PREFIX):
            continue
        pid_text = folder.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def last_backup(backup_dir: Path, environment: str) -> dict[str, object] | None:
    """The newest backup's short record for `status`, or None. Reads files only."""
    manifests = list_manifests(backup_dir.absolute(), environment)
    if not manifests:
        return None
    newest = manifests[0]
    return {
        "id": newest.id,
        "created_at": newest.created_at,
        "age_s": newest.summary()["age_s"],
        "revisions": ", ".join(newest.revisions) or "(none)",
        "size": newest.size,
        "verified": newest.verified,
        "restore_tested": newest.restore_tested,
    }
