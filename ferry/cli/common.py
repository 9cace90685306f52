"""What every ferry command shares: the API client, Docker-style tables, one-line errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from ferry.api.client import ApiClient
from ferry.cli import gotemplate
from ferry.errors import FerryError

P = ParamSpec("P")
T = TypeVar("T")

_host: list[str | None] = [None]


def set_host(host: str | None) -> None:
    _host[0] = host


def client(timeout_s: float | None = 120.0) -> ApiClient:
    return ApiClient(_host[0], timeout_s=timeout_s)


def one_line(message: object) -> str:
    """An error as the one line the CLI prints: a daemon's multi-line detail (a tool's stderr,
    say) joined with '; '."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return "; ".join(lines)


def fail(message: str, code: int = 1) -> None:
    print(f"Error: {one_line(message)}", file=sys.stderr)
    raise typer.Exit(code)


def handles_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn Ferry errors into one clear line on stderr and the kind's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except FerryError as exc:
            print(f"Error: {one_line(exc)}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


def for_each(refs: Sequence[str], action: Callable[[str], None]) -> None:
    """Docker's way with several objects: an error on one is reported and the rest still
    done; the exit code tells that something failed."""
    failed = 0
    for ref in refs:
        try:
            action(ref)
        except FerryError as exc:
            print(f"Error: {one_line(exc)}", file=sys.stderr)
            failed = exc.exit_code
    if failed:
        raise typer.Exit(failed)


class Inspected:
    """Docker's ``inspect`` of several objects: what was found is printed, then an error line
    for each one that was not, and the exit code says so (``docker inspect a missing`` prints
    ``a`` and "Error: No such object: missing", exit 1)."""

    def __init__(self, api: ApiClient, paths: Sequence[str], **query: Any) -> None:
        self.found: list[Any] = []
        self._errors: list[FerryError] = []
        for path in paths:
            try:
                self.found.append(api.get(path, **query))
            except FerryError as exc:
                self._errors.append(exc)

    def fail_for_missing(self) -> None:
        """Print each error (after what was found was printed); exit with the last one's code."""
        for exc in self._errors:
            print(f"Error: {one_line(exc)}", file=sys.stderr)
        if self._errors:
            raise typer.Exit(self._errors[-1].exit_code)


def remove_each(api: ApiClient, collection: str, refs: Sequence[str], **query: Any) -> None:
    """Docker's ``rm`` verbs: ``DELETE <collection>/<ref>`` for each of ``refs``, the ref printed
    once removed; errors as ``for_each`` reports them."""

    def one(ref: str) -> None:
        api.delete(f"{collection}/{ref}", **query)
        print(ref)

    for_each(refs, one)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Docker's plain tables: upper-case headers, columns three spaces apart, no borders."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [headers, *cells]
    for line in lines:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])]
        print("   ".join([*padded, line[-1]]).rstrip())


class _Headers(dict[str, str]):
    """The header of any placeholder: its column's header, else its name in capitals."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return key.upper()


Column = tuple[str, str | Callable[[dict[str, Any]], Any]]  # header, field name or getter


def print_rows(columns: Sequence[Column], rows: Sequence[dict[str, Any]], template: str) -> None:
    """A listing: Docker's table of ``columns``, or each row (keyed by Docker's placeholder
    names) through ``--format``: a Go template, ``table TEMPLATE`` to keep aligned headers,
    or ``json``. ``\\t`` in the template is a tab, as in Docker."""

    def cell(row: dict[str, Any], get: str | Callable[[dict[str, Any]], Any]) -> Any:
        return row[get] if isinstance(get, str) else get(row)

    if not template or template.strip() == "table":
        print_table([h for h, _ in columns], [[cell(r, g) for _, g in columns] for r in rows])
        return
    if template == "json":
        for row in rows:
            print(json.dumps(row, separators=(",", ":")))
        return
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    if not template.startswith("table"):
        for row in rows:
            print(gotemplate.render(template, row))
        return
    body = template[len("table") :].strip()
    # the header line is the template rendered over the headers, as Docker does
    headers = _Headers({g: h for h, g in columns if isinstance(g, str)})
    lines = [gotemplate.render(body, headers)] + [gotemplate.render(body, r) for r in rows]
    cells = [line.split("\t") for line in lines]
    width = max(len(c) for c in cells)
    print_table(
        cells[0] + [""] * (width - len(cells[0])), [c + [""] * (width - len(c)) for c in cells[1:]]
    )


ListFormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help="Print each row through a Go template, e.g. '{{.Name}}' or "
        "'table {{.ID}}\\t{{.Name}}', or as 'json'",
    ),
]


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=4))


FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="Print each object through a Go template, e.g. '{{.Name}}', or as 'json'",
    ),
]


def print_inspected(found: list[Any], template: str) -> None:
    """What every ``inspect`` prints: the objects as a JSON array, or one line per object
    through ``--format`` (Docker's Go templates)."""
    if not template:
        print_json(found)
    elif template == "json":
        for item in found:
            print(json.dumps(item, separators=(",", ":")))
    else:
        for item in found:
            print(gotemplate.render(template, item))


def parse_filters(pairs: Sequence[str]) -> dict[str, list[str]]:
    """Docker's ``--filter KEY=VALUE``, repeatable: values of one key are alternatives."""
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"invalid filter {pair!r}: expected KEY=VALUE", 2)
        filters.setdefault(key, []).append(value)
    return filters


def parse_kv(pairs: Sequence[str], what: str, *, bare_ok: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` pairs; with ``bare_ok`` a lone ``KEY`` means an empty value (Docker's
    ``--opt encrypted``)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key or not (sep or bare_ok):
            fail(f"invalid {what} {pair!r}: expected KEY=VALUE", 2)
        out[key] = value
    return out
