import json

import pytest

from ferry.cli.common import Column, print_rows

COLUMNS: list[Column] = [
    ("NETWORK ID", "ID"),
    ("NAME", "Name"),
    ("DRIVER", lambda row: row["Driver"].upper()),
]
ROWS = [
    {"ID": "a1b2c3", "Name": "blue", "Driver": "overlay", "Internal": False},
    {"ID": "d4e5f6", "Name": "front-end", "Driver": "bridge", "Internal": True},
]


def printed(capsys: pytest.CaptureFixture[str], template: str) -> list[str]:
    print_rows(COLUMNS, ROWS, template)
    return capsys.readouterr().out.splitlines()


def test_without_a_format_the_table_has_docker_s_headers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert printed(capsys, "") == [
        "NETWORK ID   NAME        DRIVER",
        "a1b2c3       blue        OVERLAY",
        "d4e5f6       front-end   BRIDGE",
    ]


def test_a_template_prints_one_line_per_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, "{{.Name}}:{{.Internal}}") == ["blue:false", "front-end:true"]


def test_a_table_template_aligns_its_columns_under_their_headers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # "\t" as typed in a shell's double quotes: a backslash and a t
    assert printed(capsys, "table {{.Name}}\\t{{.ID}}\\t{{.Internal}}") == [
        "NAME        NETWORK ID   INTERNAL",
        "blue        a1b2c3       false",
        "front-end   d4e5f6       true",
    ]


def test_json_prints_each_row_as_an_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert [json.loads(line) for line in printed(capsys, "json")] == ROWS


def test_a_bare_table_format_is_the_default_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, "table") == printed(capsys, "")
