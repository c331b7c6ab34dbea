"""The public API is explicit and importable."""

import abmigrate


def test_all_names_exist_and_are_sorted() -> None:
    assert abmigrate.__all__ == sorted(abmigrate.__all__)
    for name in abmigrate.__all__:
        assert hasattr(abmigrate, name), name


def test_api_functions_return_records_without_printing() -> None:
    expected = {"current", "status", "history", "heads", "plan", "upgrade", "downgrade"}
    assert expected <= set(abmigrate.api.__all__)
