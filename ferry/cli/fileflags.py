"""``--secret``/``--config`` (service create) and ``--secret-add|rm``/``--config-add|rm``
(service update), read as the docker CLI reads them (``cli/command/service/opts.go``,
``parse.go``): ``NAME`` or ``source=NAME,target=PATH,uid=0,gid=0,mode=0444`` (``src`` for
``source``; a secret's default target is its name under /run/secrets, a config's its name
under /); a mode is Go's number syntax, so ``0400`` is octal. Names are resolved to ids
through the API, exactly ("could not find secret NAME")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferry.api.client import ApiClient
from ferry.errors import InvalidArgument, NotFound

_KEYS = {"source": "source", "src": "source", "target": "target", "uid": "uid", "gid": "gid",
         "mode": "mode"}  # fmt: skip


@dataclass
class FileFlags:
    secrets: list[str] = field(default_factory=list)  # --secret, --secret-add
    secrets_rm: list[str] = field(default_factory=list)  # --secret-rm: names or ids
    configs: list[str] = field(default_factory=list)
    configs_rm: list[str] = field(default_factory=list)


def parse_mode(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 0, 32)``: ``0400`` and ``0o400`` octal, ``0x1a4`` hex,
    else decimal."""
    try:
        if text.lower().startswith(("0o", "0x", "0b")):
            return int(text, 0)
        if len(text) > 1 and text.startswith("0"):
            return int(text, 8)
        return int(text, 10)
    except ValueError as exc:
        raise InvalidArgument(f"invalid mode {text!r}: a number such as 0444") from exc


def parse_ref(text: str, kind: str) -> dict[str, Any]:
    """One flag's value as a reference without its id: ``{"File": {...}, "Name": source}``."""
    fields: dict[str, str] = {}
    if "=" not in text and "," not in text:
        fields["source"] = text
    else:
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise InvalidArgument(f"invalid field '{part}' must be a key=value pair")
            wanted = _KEYS.get(key.strip().lower())
            if wanted is None:  # the docker CLI's words (opts.SecretOpt / ConfigOpt)
                raise InvalidArgument(f"invalid field in {kind} request: {key.strip()}")
            fields[wanted] = value.strip()
    source = fields.get("source", "")
    if not source:
        raise InvalidArgument(f"source is required for --{kind} {text!r}")
    return {
        "File": {
            "Name": fields.get("target") or source,
            "UID": fields.get("uid", "0"),
            "GID": fields.get("gid", "0"),
            "Mode": parse_mode(fields["mode"]) if "mode" in fields else 0o444,
        },
        "Name": source,
    }


def _ids(api: ApiClient, kind: str) -> dict[str, str]:
    """Every object of ``kind`` by name -> id."""
    found = api.call("GET", f"/{kind}s")
    return {o["Spec"]["Name"]: o["ID"] for o in found}


def resolve(api: ApiClient, texts: list[str], kind: str) -> list[dict[str, Any]]:
    """The references ``texts`` ask for, with their ids; NotFound as the docker CLI says it."""
    if not texts:
        return []
    ids = _ids(api, kind)
    field = "Secret" if kind == "secret" else "Config"
    out = []
    for text in texts:
        ref = parse_ref(text, kind)
        name = ref.pop("Name")
        if name not in ids:
            raise NotFound(f"could not find {kind} {name}")
        out.append({**ref, f"{field}ID": ids[name], f"{field}Name": name})
    return out


def apply(api: ApiClient, flags: FileFlags, container: dict[str, Any]) -> None:
    """Change a ContainerSpec as asked: removals (by name or id) first, then additions, which
    replace a reference to the same target (the docker CLI's update does the same)."""
    for kind, adds, removes in (("secret", flags.secrets, flags.secrets_rm),
                                ("config", flags.configs, flags.configs_rm)):  # fmt: skip
        field = "Secret" if kind == "secret" else "Config"
        key = f"{field}s"
        gone = set(removes)
        refs = [r for r in container.get(key) or []
                if not {r.get(f"{field}Name"), r.get(f"{field}ID")} & gone]  # fmt: skip
        added = resolve(api, adds, kind)
        targets = {r["File"]["Name"] for r in added}
        refs = [r for r in refs if (r.get("File") or {}).get("Name") not in targets] + added
        if refs or key in container:
            container[key] = refs
