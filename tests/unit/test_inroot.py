"""Untrusted paths resolved inside a root (openat2 RESOLVE_IN_ROOT): the helper that bind
sources, volume names and ``docker cp`` destinations go through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ferry.errors import InvalidArgument
from ferry.kernel.inroot import Root, clean, remove_tree, resolve_in_root


@pytest.mark.parametrize(
    ("untrusted", "cleaned"),
    [
        ("", ""),
        ("/", ""),
        (".", ""),
        ("..", ""),
        ("../../etc/passwd", "etc/passwd"),
        ("/etc//passwd/", "etc/passwd"),
        ("a/./b/../c", "a/c"),
        ("a/../../..", ""),
        ("with\nnewline", "with\nnewline"),
    ],
)
def test_names_are_cleaned_as_if_absolute(untrusted: str, cleaned: str) -> None:
    assert clean(untrusted) == cleaned


def test_a_nul_byte_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        clean("a\x00b")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root with absolute and relative symlinks, one dangling, one looping; a host
    directory beside it that every symlink names."""
    root = tmp_path / "root"
    (root / "data/volumes").mkdir(parents=True)
    (root / "data/file").write_text("f")
    host = tmp_path / "host"
    host.mkdir()
    (root / "abs").symlink_to("/data")
    (root / "rel").symlink_to("../../../../data")
    (root / "tohost").symlink_to(host)
    (root / "dangling").symlink_to("/nowhere")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    return root


@pytest.mark.parametrize(
    ("untrusted", "inside"),
    [
        ("/data/volumes", "data/volumes"),
        ("abs/volumes", "data/volumes"),
        ("/rel/volumes/new/deeper", "data/volumes/new/deeper"),
        ("../../../abs/file", "data/file"),
        ("/", ""),
    ],
)
def test_symlinks_resolve_as_if_the_root_were_slash(
    tree: Path, untrusted: str, inside: str
) -> None:
    assert resolve_in_root(tree, untrusted) == (tree / inside if inside else tree)


def test_a_symlink_to_a_host_directory_means_the_same_path_inside(tree: Path) -> None:
    host = tree.parent / "host"
    with pytest.raises(InvalidArgument, match="'tohost' is a symlink whose target does not"):
        resolve_in_root(tree, "tohost/x")  # the root has no such directory: not the host's
    (tree / str(host).lstrip("/")).mkdir(parents=True)
    assert resolve_in_root(tree, "tohost/x") == tree / str(host).lstrip("/") / "x"


@pytest.mark.parametrize(
    ("untrusted", "refusal"),
    [
        ("dangling/x", "'dangling' is a symlink whose target does not exist"),
        ("data/file/below", "not a directory"),
        ("loop1/x", "Too many levels of symbolic links"),
        ("a\x00b", "NUL"),
    ],
)
def test_what_cannot_be_resolved_is_refused(tree: Path, untrusted: str, refusal: str) -> None:
    with pytest.raises(InvalidArgument, match=refusal):
        resolve_in_root(tree, untrusted)


def test_making_directories_never_goes_through_a_dangling_symlink(tree: Path) -> None:
    with Root(tree) as root, pytest.raises(FileNotFoundError):
        root.dir("dangling/sub", create=True)
    assert not os.path.lexists("/nowhere")
    assert not (tree / "nowhere").exists()


def test_made_directories_are_0755_whatever_the_umask(tree: Path) -> None:
    old = os.umask(0o077)
    try:
        with Root(tree) as root:
            os.close(root.dir("abs/made/here", create=True))
    finally:
        os.umask(old)
    for made in (tree / "data/made", tree / "data/made/here"):
        assert made.stat().st_mode & 0o777 == 0o755


def test_remove_tree_unlinks_symlinks_without_following_them_at_any_depth(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    fd = os.open(doomed, os.O_RDONLY)
    for _ in range(1200):  # deeper than PATH_MAX allows to name: built by descriptors
        os.mkdir("a", dir_fd=fd)
        deeper = os.open("a", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.symlink(outside, "to-outside", dir_fd=fd)
    os.close(fd)
    (doomed / "to-outside").symlink_to(outside)
    (doomed / "file").write_text("x")
    remove_tree(doomed)
    assert not doomed.exists()
    assert (outside / "keep").read_text() == "keep"
    remove_tree(doomed)  # nothing there is fine
