"""The journal's run records are typed (results.RunRecord) but stored as JSON: a record
written by another abmigrate version reads back without loss, and what this version writes
reads back equal."""

from __future__ import annotations

from typing import Any

from abmigrate.results import AppliedStep, DataLoss, RunRecord, Verification


def _stored_by_an_older_version() -> dict[str, Any]:
    # No versions, warnings, data_loss or models_prediction; steps without attempts.
    return {
        "run_id": "20251125T130501-1a2b3c4d",
        "environment": "production",
        "database": "postgresql+psycopg://app:***@db/abparts",
        "direction": "upgrade",
        "from_revisions": ["r1"],
        "to_revisions": ["r3"],
        "planned": ["r2", "r3"],
        "applied": [
            {"revision": "r2", "message": "add", "direction": "upgrade", "elapsed_s": 0.5},
            {"revision": "r3", "message": "drop", "direction": "upgrade", "elapsed_s": 1.5},
        ],
        "started_at": "2025-11-25T13:05:01+00:00",
        "finished_at": "2025-11-25T13:05:03+00:00",
        "outcome": "succeeded",
        "ticket": "OPS-42",  # a key this version does not know
    }


def test_a_record_from_another_version_reads_and_writes_back_what_it_held() -> None:
    stored = _stored_by_an_older_version()
    run = RunRecord.from_record(stored)
    assert run.is_migration
    assert run.applied[1] == AppliedStep("r3", "drop", "upgrade", 1.5)
    assert run.applied[1].attempts == 1
    assert run.extra == {"ticket": "OPS-42"}
    written = run.to_record()
    assert written["ticket"] == "OPS-42"
    # Nothing it held is changed; what it lacked is added empty.
    assert {key: written[key] for key in stored if key != "applied"} == {
        key: value for key, value in stored.items() if key != "applied"
    }
    assert [step["revision"] for step in written["applied"]] == ["r2", "r3"]
    assert written["warnings"] == [] and written["versions"] == {}


def test_what_this_version_writes_reads_back_equal() -> None:
    run = RunRecord(
        run_id="20261128T115700-5505b2ad",
        direction="downgrade",
        environment="staging",
        database="sqlite:///staging.db",
        started_at="2026-11-28T11:57:00+00:00",
        outcome="failed",
        dialect="sqlite",
        planned=["r3"],
        in_flight="r3",
        error="boom",
        data_loss=[DataLoss("r3", "parts", "rating", 12, "drops parts.rating (12 values)")],
        verification=Verification(
            ok=False,
            current=["r3"],
            expected=["r2"],
            schema={"checked": False, "reason": "off"},
            drift=None,
            drift_before_run=[],
            drift_not_checked=[],
            verify_models="warn",
            health={"ok": True, "checks": []},
            problems=["version table says r3"],
            warnings=[],
        ),
        incident_path="incidents/x.md",
    )
    record = run.to_record()
    assert RunRecord.from_record(record) == run
    assert record["data_loss"][0]["rows"] == 12
    assert record["verification"]["problems"] == ["version table says r3"]


def test_only_the_keys_that_apply_to_a_kind_of_run() -> None:
    acknowledged = RunRecord(
        run_id="x",
        direction="acknowledge",
        environment="production",
        outcome="acknowledged",
        checksums={"r2": "ab" * 32},
        reason="reviewed in #12",
    ).to_record()
    assert acknowledged["checksums"] == {"r2": "ab" * 32}
    assert acknowledged["reason"] == "reviewed in #12"
    # A migration's record carries no acknowledgement, dry-run or stamp keys.
    upgrade = RunRecord(run_id="y", direction="upgrade", environment="dev").to_record()
    for key in ("checksums", "reason", "dry_run", "skipped", "method", "differences"):
        assert key not in upgrade
