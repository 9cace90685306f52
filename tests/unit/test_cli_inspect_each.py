"""Docker's inspect of several objects: the found ones print, each missing one errors."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from ferry.cli.common import Inspected, print_inspected
from ferry.errors import NotFound


class _Api:
    def get(self, path: str, **_query: Any) -> Any:
        if "missing" in path:
            raise NotFound(f"No such object: {path.rsplit('/', 1)[-1]}")
        return {"Name": path}


def test_found_objects_print_then_each_missing_one_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    inspected = Inspected(_Api(), ["/x/a", "/x/missing1", "/x/b", "/x/missing2"])  # type: ignore[arg-type]
    print_inspected(inspected.found, "{{.Name}}")
    with pytest.raises(typer.Exit) as exit_:
        inspected.fail_for_missing()
    out, err = capsys.readouterr()
    assert out.splitlines() == ["/x/a", "/x/b"]
    assert err.splitlines() == [
        "Error: No such object: missing1",
        "Error: No such object: missing2",
    ]
    assert exit_.value.exit_code == NotFound("x").exit_code


def test_nothing_missing_exits_normally() -> None:
    inspected = Inspected(_Api(), ["/x/a"])  # type: ignore[arg-type]
    inspected.fail_for_missing()
    assert inspected.found == [{"Name": "/x/a"}]
