"""Docker's ``reference`` filter and the rows ``docker images`` prints: a pattern (Go's
path.Match) chooses tags and digests one by one; the CLI makes one row per chosen tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.api.routes.images import reference_refs, summary
from ferry.cli.images import image_rows
from ferry.errors import InvalidArgument
from ferry.model.reference import familiar_match, path_pattern
from ferry.runtime.images import Image

D1, D2 = ("sha256:" + c * 64 for c in "ab")


@pytest.mark.parametrize(
    ("pattern", "ref", "matched"),
    [
        ("nginx", "nginx:latest", True),  # the repository of a tag
        ("nginx", f"nginx@{D1}", True),  # the repository of a digest
        ("nginx:1.*", "nginx:1.25", True),
        ("nginx:1.*", "nginx:latest", False),
        ("*", "me/app:1", False),  # "*" does not cross "/"
        ("*/*", "me/app:1", True),
        ("me/ap?", "me/app:1", True),
        ("me?app", "me/app:1", False),  # nor does "?"
        ("[a-m]e/app", "me/app:1", True),
        ("[^m]e/app", "me/app:1", False),
        ("localhost:5000/*", "localhost:5000/app:v1", True),
        ("a\\*", "a*:1", True),  # an escaped "*" is literal
        ("a\\*", "ab:1", False),
        ("app", "me/app:1", False),  # the whole name, not a suffix
    ],
)
def test_a_reference_pattern_matches_as_dockers_familiar_match(
    pattern: str, ref: str, matched: bool
) -> None:
    assert familiar_match(path_pattern(pattern), ref) is matched


@pytest.mark.parametrize("pattern", ["a[", "a\\", "[]a]", "[a-]", "[-a]", "[^"])
def test_a_malformed_pattern_is_refused_as_go_refuses_it(pattern: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        path_pattern(pattern)


def _image(tags: tuple[str, ...], digests: tuple[str, ...]) -> Image:
    return Image("x", D2, "2026-01-01T00:00:00Z", 5, Path("/"), repo_tags=tags,
                 repo_digests=digests)  # fmt: skip


def test_the_filter_keeps_only_matching_tags_and_digests_of_an_image() -> None:
    image = _image(("a:1", "b:2"), (f"a@{D1}", f"b@{D1}"))
    refs = reference_refs([path_pattern("a")], image)
    assert refs == (["a:1"], [f"a@{D1}"])
    doc = summary(image, refs)
    assert (doc["RepoTags"], doc["RepoDigests"]) == (["a:1"], [f"a@{D1}"])
    # a tag pattern drops the digests, whose names have no tag (Docker: docker/cli#2952)
    assert reference_refs([path_pattern("b:2")], image) == (["b:2"], [])
    assert reference_refs([path_pattern("c")], image) is None
    assert summary(image)["RepoTags"] == ["a:1", "b:2"]


def test_the_cli_prints_a_row_per_tag_and_digest_rows_only_for_untagged_repositories() -> None:
    image = {"RepoTags": ["a:1", "a:2", "b:3"], "RepoDigests": [f"a@{D1}", f"c@{D2}"]}
    assert image_rows(image, digests=False) == [
        ("a", "1", "<none>"), ("a", "2", "<none>"), ("b", "3", "<none>"), ("c", "<none>", ""),
    ]  # fmt: skip
    assert image_rows(image, digests=True) == [
        ("a", "1", D1), ("a", "2", D1), ("b", "3", "<none>"), ("c", "<none>", D2),
    ]  # fmt: skip
    assert image_rows({"RepoTags": [], "RepoDigests": []}, digests=True) == [
        ("<none>", "<none>", "<none>")
    ]
    assert image_rows({"RepoTags": ["localhost:5000/app:v1"], "RepoDigests": None}, False) == [
        ("localhost:5000/app", "v1", "<none>")
    ]


def test_docker_images_repo_prints_only_the_matching_tag_rows() -> None:
    """``docker images a`` of an image tagged a:1 and b:2: the daemon lists it with a:1 only,
    so the CLI prints one row."""
    image = _image(("a:1", "b:2"), ())
    listed = summary(image, reference_refs([path_pattern("a")], image))
    assert image_rows(listed, digests=False) == [("a", "1", "<none>")]
