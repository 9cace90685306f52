"""The CLI's side of pulls: Docker's JSON messages printed as the docker CLI prints them, and
``run --pull``'s create → pull → create again."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ferry.cli.registry import create_container, show_progress
from ferry.errors import InvalidArgument, NotFound


def _chunks(*messages: dict[str, Any]) -> list[bytes]:
    data = b"".join(json.dumps(m).encode() + b"\r\n" for m in messages)
    return [data[:7], data[7:40], data[40:]]  # messages split across reads


def test_progress_lines_read_as_the_docker_cli_prints_them() -> None:
    out = io.StringIO()
    show_progress(iter(_chunks(
        {"status": "Pulling from library/nginx", "id": "latest"},
        {"status": "Pull complete", "progressDetail": {}, "id": "abc123"},
        {"status": "Digest: sha256:00"},
    )), out)  # fmt: skip
    assert out.getvalue().splitlines() == [
        "latest: Pulling from library/nginx",
        "abc123: Pull complete",
        "Digest: sha256:00",
    ]


def test_an_error_message_in_the_stream_ends_it_with_that_error() -> None:
    message = "No such image: x:latest"
    with pytest.raises(NotFound, match=message):
        show_progress(iter(_chunks({"errorDetail": {"message": message}, "error": message})),
                      io.StringIO())  # fmt: skip


CREATE = "/containers/create"


class FakeApi:
    def __init__(self, missing: bool) -> None:
        self.missing = missing
        self.calls: list[str] = []

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        self.calls.append(path)
        if self.missing:
            raise NotFound("No such image: web:latest")
        return {"Id": "c1"}

    def stream(self, method: str, path: str, *, query: Any = None) -> Any:
        self.calls.append(f"{path}?{query['fromImage']}:{query['tag']}")
        self.missing = False
        return iter(_chunks({"status": "Status: Downloaded newer image for web:latest"}))


@pytest.mark.parametrize(
    ("policy", "missing", "calls"),
    [
        ("missing", True, [CREATE, "/images/create?web:latest", CREATE]),
        ("missing", False, [CREATE]),
        ("always", False, ["/images/create?web:latest", CREATE]),
    ],
)  # fmt: skip
def test_run_pulls_as_its_pull_policy_says(policy: str, missing: bool, calls: list[str]) -> None:
    api = FakeApi(missing)
    assert create_container(api, {}, None, "web", policy) == "c1"  # type: ignore[arg-type]
    assert api.calls == calls


def test_never_does_not_pull_and_a_bad_policy_is_refused() -> None:
    api = FakeApi(missing=True)
    with pytest.raises(NotFound):
        create_container(api, {}, None, "web", "never")  # type: ignore[arg-type]
    assert api.calls == ["/containers/create"]
    with pytest.raises(InvalidArgument, match="must be one of missing, always, never"):
        create_container(api, {}, None, "web", "sometimes")  # type: ignore[arg-type]
