"""Server defaults a database reports in another spelling than the models are the same
default: function case, casts, outer parentheses, quotes and now() / CURRENT_TIMESTAMP."""

import pytest

from abmigrate.state.drift import _same_default


@pytest.mark.parametrize(
    ("model", "database"),
    [
        ("GEN_RANDOM_UUID()", "gen_random_uuid()"),
        ("'draft'", "'draft'::character varying"),
        ("'{}'", "'{}'::jsonb"),
        ("timezone('utc', now())", "timezone('utc'::text, now())"),
        ("CURRENT_TIMESTAMP", "now()"),
        ("''", "''"),
        ("0", "(0)"),
        ("'2020-01-01'", "'2020-01-01'::timestamp without time zone"),
        ("1", "'1'::numeric(10,2)"),
    ],
)
def test_one_default_in_two_spellings_is_the_same(model: str, database: str) -> None:
    assert _same_default(model, database)


@pytest.mark.parametrize(
    ("model", "database"),
    [("'a'", "'b'::text"), ("now()", "clock_timestamp()"), ("0", "1"), ("'x'", None)],
)
def test_different_defaults_stay_different(model: str, database: str | None) -> None:
    assert not _same_default(model, database)
