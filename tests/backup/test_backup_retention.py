"""Retention picks what to delete: the newest N stay, and the last good backup is never lost."""

from __future__ import annotations

from abmigrate.backup.manifest import Manifest
from abmigrate.backup.retention import choose_deletions


def manifest(number: int, *, verified: bool = True, restore_tested: bool = False) -> Manifest:
    return Manifest(
        id=f"2026010{number}T000000Z-000{number}",
        environment="production",
        database="postgresql://app@db/shop",
        dialect="postgresql",
        server_version="15.0",
        format="pg_dump custom (-Fc -Z0)",
        compression="zstd",
        compression_level=1,
        revisions=["abc"],
        files=[],
        tools={},
        tables={},
        checksum_method="test",
        created_at=f"2026-01-0{number}T00:00:00+00:00",
        duration_s=1.0,
        verified=verified,
        restore_test={"ok": True} if restore_tested else None,
    )


def ids(manifests: list[Manifest]) -> list[str]:
    return [m.id[-1] for m in manifests]


def test_keeps_the_newest() -> None:
    newest_first = [manifest(n) for n in (5, 4, 3, 2, 1)]
    assert ids(choose_deletions(newest_first, 3)) == ["2", "1"]
    assert choose_deletions(newest_first, 10) == []


def test_never_deletes_the_only_verified_backup() -> None:
    newest_first = [
        manifest(5, verified=False),
        manifest(4, verified=False),
        manifest(3, verified=True),
        manifest(2, verified=True),
    ]
    # 3 is the newest verified one and nothing kept is verified: it stays, 2 goes.
    assert ids(choose_deletions(newest_first, 2)) == ["2"]


def test_keeps_the_newest_restore_tested_backup_when_no_kept_one_is() -> None:
    newest_first = [
        manifest(5),
        manifest(4),
        manifest(3, restore_tested=True),
        manifest(2, restore_tested=True),
        manifest(1),
    ]
    assert ids(choose_deletions(newest_first, 2)) == ["2", "1"]
    # When a kept backup is restore-tested, no extra one is protected.
    newest_first[0] = manifest(5, restore_tested=True)
    assert ids(choose_deletions(newest_first, 2)) == ["3", "2", "1"]
