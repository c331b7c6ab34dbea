"""Backup, list, verify and restore: the operations behind the CLI commands and the pipeline.

A backup is complete only when every file is checksummed, the archive has been read back
through the dialect's own tool, and its folder has been renamed from ``.partial-…`` to its id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from abmigrate.backup.base import (
    DIR_MODE,
    FILE_MODE,
    Backend,
    Compressor,
    TableStats,
    choose_compressor,
    compressor_named,
    dump_jobs,
    run_pipeline,
)
from abmigrate.backup.base import child_env as _child_env
from abmigrate.backup.manifest import (
    FileEntry,
    Manifest,
    environment_dir,
    find_backup,
    list_manifests,
    make_private_dir,
    new_backup_id,
    now_iso,
    partial_dir,
    remove_stale_partials,
    sha256_of,
)
from abmigrate.backup.retention import apply_retention
from abmigrate.db.database import read_version_rows, scrub
from abmigrate.db.dialects import dialect_for
from abmigrate.db.scratch import scratch_database, signals_raise
from abmigrate.db.url import mask_url
from abmigrate.errors import BackupError, ConnectionFailed, GuardRefused
from abmigrate.results import BackupList, BackupRecord, BackupVerification, RestoreResult

if TYPE_CHECKING:
    from abmigrate.config.settings import Settings
    from abmigrate.config.workspace import Workspace

__all__ = [
    "RestoreConfirm",
    "backend_for",
    "backup_for_pipeline",
    "copy_database",
    "list_backups",
    "restore",
    "take_backup",
    "verify_backup",
]

# Asked before replacing a non-empty database; gets the target's name, returns True to go on.
RestoreConfirm = Callable[[str], bool]


def _dialect(url: str) -> str:
    name = url.split(":", 1)[0].split("+", 1)[0]
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(name, name)


def backend_for(dialect: str) -> Backend:
    # The backup registry itself (the pattern db.dialects follows): one Backend per family,
    # imported only when used (each module names its dump tool).
    dialect = _dialect(dialect + ":")
    if dialect == "postgresql":
        from abmigrate.backup.postgres import PostgresBackend

        return PostgresBackend()
    if dialect == "sqlite":
        from abmigrate.backup.sqlite import SqliteBackend

        return SqliteBackend()
    if dialect == "mysql":
        from abmigrate.backup.mysql import MysqlBackend

        return MysqlBackend()
    raise BackupError(f"backups are not supported for {dialect} databases")


@contextlib.contextmanager
def _database_errors(url: str, what: str) -> Iterator[None]:
    """A database error raised by a backend becomes one scrubbed BackupError line."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        lines = str(exc.orig or exc).strip().splitlines()
        first = lines[0] if lines else type(exc).__name__
        raise BackupError(f"{what} failed: {scrub(first, url)}") from None


def _record(manifest: Manifest, *, deleted: list[str] | None = None) -> BackupRecord:
    summary = manifest.summary()
    return BackupRecord(
        id=manifest.id,
        environment=manifest.environment,
        database=manifest.database,
        dialect=manifest.dialect,
        path=str(manifest.folder),
        created_at=manifest.created_at,
        revisions=manifest.revisions,
        size=manifest.size,
        sha256=summary["sha256"],
        files=summary["files"],
        format=manifest.format,
        compression=summary["compression"],
        verified=manifest.verified,
        restore_tested=manifest.restore_tested,
        reason=manifest.reason,
        tables=len(manifest.tables),
        duration_s=manifest.duration_s,
        age_s=summary["age_s"],
        deleted=deleted or [],
    )


# --------------------------------------------------------------------------- backup


def take_backup(workspace: Workspace, *, reason: str = "manual") -> BackupRecord:
    """Back up the environment's database; apply retention; return the new backup."""
    environment = workspace.environment
    settings = workspace.settings
    backend = backend_for(environment.dialect)
    compressor = choose_compressor()
    backup_dir = settings.backup_dir.absolute()
    env_dir = environment_dir(backup_dir, environment.name)
    make_private_dir(backup_dir)
    make_private_dir(env_dir)
    remove_stale_partials(env_dir)
    backup_id = new_backup_id()
    folder = partial_dir(backup_dir, environment.name, backup_id)
    try:
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)
    except OSError as exc:
        raise BackupError(
            f"backup folder {env_dir} is not writable: {exc.strerror}",
            hint="fix its permissions or set backup_dir to a writable folder",
        ) from None
    # Microseconds: two backups within one second still list in the order they were taken.
    created_at = now_iso(precise=True)
    started = time.monotonic()
    # SIGTERM/SIGHUP become KeyboardInterrupt here, so the partial folder is removed.
    with signals_raise():
        try:
            with _database_errors(environment.url, "backup"):
                outcome = backend.dump(environment.url, folder, compressor)
            entries = []
            for name in outcome.files:
                path = folder / name
                path.chmod(FILE_MODE)
                if path.parent != folder:  # a directory archive: owner-only like the rest
                    path.parent.chmod(DIR_MODE)
                size = path.stat().st_size
                tested = outcome.tested.get(name)
                if tested is not None and tested[1] != size:
                    raise BackupError(
                        f"backup of {environment.name} failed: {name} is {size} bytes on disk,"
                        f" {tested[1]} were written",
                        hint="check the backup folder's disk",
                    )
                # A file hashed as it was written is not read again.
                entries.append(FileEntry(name, tested[0] if tested else sha256_of(path), size))
            manifest = Manifest(
                id=backup_id,
                environment=environment.name,
                database=environment.masked_url,
                dialect=backend.dialect,
                server_version=outcome.server_version,
                format=outcome.format,
                compression=compressor.name,
                compression_level=compressor.level,
                revisions=outcome.revisions,
                files=entries,
                tools=outcome.tools,
                tables={name: stats.to_record() for name, stats in outcome.tables.items()},
                checksum_method=outcome.checksum_method,
                created_at=created_at,
                duration_s=0.0,
                reason=reason,
                folder=folder,
            )
            # Read the archive back before calling it a backup (what was tested as it was
            # written is not read again).
            _check_archive(backend, manifest, compressor, tested=set(outcome.tested))
            manifest.verified = True
            manifest.verified_at = now_iso()
            manifest.duration_s = round(time.monotonic() - started, 3)
            manifest.save()
            final = env_dir / backup_id
            os.rename(folder, final)
            manifest.folder = final
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise BackupError(
                f"backup of {environment.name} failed: {exc.strerror} ({exc.filename or folder})",
                hint="check free space and permissions of the backup folder",
            ) from None
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, BackupError):
                exc.message = scrub(exc.message, environment.url)
            raise
    deleted = apply_retention(
        env_dir, list_manifests(backup_dir, environment.name), settings.keep_backups
    )
    return _record(manifest, deleted=deleted)


def copy_database(url: str, target_url: str) -> None:
    """Copy the database at ``url`` into the (empty) database at ``target_url``: a dump in a
    private temporary folder, restored at once (rehearsals and dry runs on a scratch copy)."""
    from abmigrate.backup.base import private_dir

    backend = backend_for(_dialect(url))
    compressor = choose_compressor()
    with private_dir("abmigrate-copy-") as folder:
        outcome = backend.dump(url, folder, compressor)
        backend.restore(folder, outcome.files, compressor, target_url)


def backup_for_pipeline(workspace: Workspace, *, reason: str = "pre-upgrade") -> BackupRecord:
    """Take a backup and re-check its checksum before the pipeline goes on.

    Raises BackupError when the backup cannot be taken or does not verify.
    """
    record = take_backup(workspace, reason=reason)
    manifest = Manifest.read(Path(record.path))
    problems = _file_problems(manifest)
    if problems:
        raise BackupError(
            f"the backup {record.id} taken before {reason} does not verify: {problems[0]}",
            hint="nothing was changed; check the backup folder's disk",
        )
    return record


# --------------------------------------------------------------------------- list


def list_backups(settings: Settings, environment: str) -> BackupList:
    backup_dir = settings.backup_dir.absolute()
    manifests = list_manifests(backup_dir, environment)
    return BackupList(
        environment=environment,
        backup_dir=str(backup_dir),
        backups=[_record(manifest) for manifest in manifests],
    )


# --------------------------------------------------------------------------- verify


def _file_problems(manifest: Manifest) -> list[str]:
    assert manifest.folder is not None
    problems: list[str] = []
    for entry in manifest.files:
        path = manifest.folder / entry.name
        if not path.is_file():
            problems.append(f"{entry.name} is missing")
            continue
        size = path.stat().st_size
        if size != entry.size:
            problems.append(f"{entry.name} is {size} bytes, the manifest says {entry.size}")
            continue
        if sha256_of(path) != entry.sha256:
            problems.append(f"{entry.name} does not match its sha256 (corrupted)")
    return problems


def _test_file(manifest: Manifest, compressor: Compressor, name: str) -> None:
    assert manifest.folder is not None
    run_pipeline(
        [compressor.test_argv(manifest.folder / name)],
        env=_child_env({}),
        what=f"{compressor.name} integrity test of {name}",
    )


def _check_archive(
    backend: Backend,
    manifest: Manifest,
    compressor: Compressor,
    tested: set[str] | frozenset[str] = frozenset(),
) -> str:
    """Test-decompress every compressed file (but ``tested``: those were tested as they were
    written) and read the archive's table of contents through the dialect's tool."""
    assert manifest.folder is not None
    packed = [
        entry.name
        for entry in manifest.files
        if entry.name.endswith(compressor.extension) and entry.name not in tested
    ]
    # Side by side, one tester per core: a directory archive has a file per table.
    with ThreadPoolExecutor(dump_jobs()) as pool:
        for _ in pool.map(lambda name: _test_file(manifest, compressor, name), packed):
            pass
    return backend.check_archive(manifest.folder, [f.name for f in manifest.files], compressor)


def _compare(
    expected: dict[str, dict[str, object]], actual: dict[str, TableStats]
) -> tuple[list[str], list[str]]:
    """Mismatches, and the tables whose data could not be compared (row count only)."""
    mismatches: list[str] = []
    unchecked: list[str] = []
    for table in sorted(set(expected) | set(actual)):
        want = expected.get(table)
        got = actual.get(table)
        if want is None:
            mismatches.append(f"{table}: present after restore, absent at backup time")
        elif got is None:
            mismatches.append(f"{table}: missing after restore")
        elif int(str(want["rows"])) != got.rows:
            mismatches.append(f"{table}: {got.rows} rows after restore, {want['rows']} at backup")
        elif got.unchecked:
            unchecked.append(f"{table}: {got.unchecked}")
        elif str(want["checksum"]) != got.checksum:
            mismatches.append(f"{table}: same row count, different data (checksum differs)")
    return mismatches, unchecked


def verify_backup(
    settings: Settings,
    environment: str,
    reference: str,
    *,
    restore_test: bool = False,
    restore_url: str | None = None,
) -> BackupVerification:
    """Check files and archive; with ``restore_test``, restore into a scratch database on
    ``restore_url``'s server (a temporary file for SQLite) and compare per-table figures."""
    manifest = find_backup(settings.backup_dir.absolute(), reference, environment)
    assert manifest.folder is not None
    checks: list[str] = []
    problems = _file_problems(manifest)
    if not problems:
        checks.append(f"sha256 and size of {len(manifest.files)} file(s) match the manifest")
        try:
            backend = backend_for(manifest.dialect)
            compressor = compressor_named(manifest.compression, manifest.compression_level)
            checks.append(_check_archive(backend, manifest, compressor))
        except BackupError as exc:
            problems.append(exc.message)
    test_report: dict[str, object] | None = None
    if restore_test and not problems:
        if restore_url is None and dialect_for(manifest.dialect).file_based:
            restore_url = "sqlite:///scratch.sqlite"  # the scratch file is a temporary one
        if restore_url is None:
            raise BackupError(
                f"the restore test of {manifest.id} needs a {manifest.dialect} server",
                hint="give the environment's database URL, or pass --scratch-url",
            )
        if _dialect(restore_url) != manifest.dialect:
            raise BackupError(
                f"backup {manifest.id} is a {manifest.dialect} backup; the restore test needs a"
                f" {manifest.dialect} server, not {_dialect(restore_url)}",
                hint="pick an environment (--env) on the backup's kind of server",
            )
        started = time.monotonic()
        try:
            with (
                signals_raise(),
                _database_errors(restore_url, "restore test"),
                scratch_database(restore_url, label="restore_test") as scratch,
            ):
                backend.restore(
                    manifest.folder, [f.name for f in manifest.files], compressor, scratch.url
                )
                recorded = {
                    table: str(figures.get("checksum", ""))
                    for table, figures in manifest.tables.items()
                }
                actual = backend.table_stats(scratch.url, recorded)
        except (BackupError, ConnectionFailed) as exc:
            exc.message = scrub(exc.message, restore_url)
            problems.append(f"restore test: {exc.message}")
            actual = {}
        mismatches, unchecked = _compare(manifest.tables, actual) if not problems else ([], [])
        problems.extend(f"restore test: {line}" for line in mismatches)
        test_report = {
            "ok": not problems,
            "at": now_iso(),
            "tables": len(actual),
            "rows": sum(stats.rows for stats in actual.values()),
            "mismatches": mismatches,
            "unchecked": unchecked,
            "elapsed_s": round(time.monotonic() - started, 3),
        }
        checks.append(
            f"restore test: {len(actual)} tables restored into a scratch database,"
            f" {len(manifest.tables) - len(mismatches)} of {len(manifest.tables)} match"
            + (f" ({len(unchecked)} by row count only)" if unchecked else "")
        )
        checks.extend(f"restore test: {line}" for line in unchecked)
    manifest.verified = not problems
    manifest.verified_at = now_iso()
    if test_report is not None:
        manifest.restore_test = test_report
    with contextlib.suppress(BackupError):  # a read-only copy can still be verified
        manifest.save()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BackupError(
            f"backup {manifest.id} failed verification: {problems[0]}{more}",
            hint="do not rely on this backup; take a new one with `abmigrate backup`",
        )
    return BackupVerification(
        id=manifest.id,
        path=str(manifest.folder),
        ok=True,
        checks=checks,
        problems=problems,
        restore_test=test_report,
    )


# --------------------------------------------------------------------------- restore


def restore(
    workspace: Workspace,
    reference: str,
    *,
    target_url: str | None = None,
    confirm: RestoreConfirm | None = None,
) -> RestoreResult:
    """Restore a backup into the environment's database (or ``target_url``)."""
    environment = workspace.environment
    manifest = find_backup(workspace.settings.backup_dir.absolute(), reference, environment.name)
    assert manifest.folder is not None
    url = target_url or environment.url
    if _dialect(url) != manifest.dialect:
        raise BackupError(
            f"backup {manifest.id} is a {manifest.dialect} backup and cannot be restored into"
            f" a {_dialect(url)} database"
        )
    problems = _file_problems(manifest)
    if problems:
        raise BackupError(
            f"backup {manifest.id} is damaged: {problems[0]}; nothing was restored",
            hint="pick another backup (`abmigrate backups`)",
        )
    backend = backend_for(manifest.dialect)
    compressor = compressor_named(manifest.compression, manifest.compression_level)
    label = environment.name if target_url is None else (_database_name(url) or mask_url(url))
    with _database_errors(url, "reading the target database"):
        replacing = not backend.is_empty(url)
    pre_backup: BackupRecord | None = None
    if replacing:
        if confirm is None:
            raise GuardRefused(
                f"{mask_url(url)} is not empty: restoring replaces its content",
                hint="pass --yes to confirm non-interactively",
                reasons=["confirmation required"],
            )
        if not confirm(label):
            raise GuardRefused("not confirmed; nothing was restored", reasons=["not confirmed"])
        if target_url is None and environment.policy.require_backup:
            pre_backup = take_backup(workspace, reason="pre-restore")
    started = time.monotonic()
    try:
        with signals_raise(), _database_errors(url, "restore"):
            backend.restore(manifest.folder, [f.name for f in manifest.files], compressor, url)
    except BackupError as exc:
        exc.message = scrub(exc.message, url)
        raise
    return RestoreResult(
        id=manifest.id,
        target=mask_url(url),
        dialect=manifest.dialect,
        replaced_existing=replacing,
        revisions=read_version_rows(url) or [],
        elapsed_s=round(time.monotonic() - started, 3),
        pre_restore_backup=pre_backup.to_record() if pre_backup else None,
    )


def _database_name(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return Path(database).name if database and dialect_for(url).file_based else database
