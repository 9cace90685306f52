"""``--user`` and ``--group-add`` resolved against the image's /etc/passwd and /etc/group, as
runc's libcontainer ``GetExecUser`` does for Docker (pure: file texts in, numbers out).

- no user: root (0:0); ``NAME`` or ``UID``: its passwd entry gives the primary group and home;
  a numeric uid without an entry runs with gid 0 and home ``/``; a name without one is refused
  with Docker's message;
- ``:GROUP`` or ``:GID`` replaces the primary group; the user's memberships in /etc/group and
  every ``--group-add`` become supplementary groups.
"""

from __future__ import annotations

from ferry.errors import InvalidArgument
from ferry.runtime.oci import ResolvedUser


def _entries(text: str) -> list[list[str]]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def _group_id(ref: str, groups: list[list[str]], what: str) -> int:
    if ref.isdigit():
        return int(ref)
    for entry in groups:
        if len(entry) >= 3 and entry[0] == ref:
            return int(entry[2])
    raise InvalidArgument(f"unable to find group {ref}: no matching entries in group file ({what})")


def resolve_user(user: str, group_add: tuple[str, ...], passwd: str, group: str) -> ResolvedUser:
    """Numbers for ``user`` (``NAME|UID[:GROUP|GID]``) in an image whose /etc/passwd and
    /etc/group read ``passwd`` and ``group`` (empty when the image has none)."""
    name, _, group_ref = (user or "0").partition(":")
    users = _entries(passwd)
    groups = _entries(group)
    uid, gid, home, login = -1, 0, "/", ""
    for entry in users:
        if len(entry) < 6:
            continue
        if entry[0] == name or (name.isdigit() and entry[2] == name):
            uid, gid, home, login = int(entry[2]), int(entry[3]), entry[5], entry[0]
            break
    if uid < 0:
        if not name.isdigit():
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
        uid = int(name)
    if group_ref:
        gid = _group_id(group_ref, groups, "--user")
    extra: list[int] = []
    if login:
        extra = [
            int(e[2]) for e in groups if len(e) >= 4 and login in e[3].split(",") and e[2].isdigit()
        ]
    extra += [_group_id(ref, groups, "--group-add") for ref in group_add]
    supplementary = tuple(dict.fromkeys(g for g in extra if g != gid))
    return ResolvedUser(uid, gid, supplementary, home or "/")
