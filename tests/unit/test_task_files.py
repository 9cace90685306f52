"""Secrets and configs in services: swarmkit's checks, Docker's paths and shapes, removal
refused while a service names one, and handed only to the node that runs the task."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest

from ferry.api.models.services import ServiceSpecModel
from ferry.api.service_spec import request_of, spec_json
from ferry.cli.fileflags import parse_mode, parse_ref
from ferry.errors import Forbidden, InvalidArgument, NotFound
from ferry.manager.networks import NetworkOps
from ferry.manager.secrets import ObjectOps
from ferry.manager.services import ServiceOps, ServiceRequest
from ferry.manager.store import Delete, Put, keys
from ferry.manager.task_files import TaskFiles
from ferry.model.codec import encode
from ferry.model.service import ContainerTemplate, Task, TaskOptions, TaskState
from ferry.model.swarm_objects import Kind
from ferry.model.task_files import FileKind, FileRef
from ferry.runtime import task_files
from tests.unit.conftest import ManagerRig

PLAIN = b"hunter2-db-password"


def secret(name: str, target: str = "", obj_id: str = "s1", **kw: object) -> FileRef:
    return FileRef(FileKind.SECRET, obj_id, name, target or name, **kw)  # type: ignore[arg-type]


def config(name: str, target: str = "", obj_id: str = "c1") -> FileRef:
    return FileRef(FileKind.CONFIG, obj_id, name, target or name)


# where the files land, and swarmkit's checks -------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "path"),
    [
        (secret("db"), "/run/secrets/db"),
        (secret("db", "pw/x"), "/run/secrets/pw/x"),
        (secret("db", "/etc/db.pw"), "/etc/db.pw"),
        (config("app"), "/app"),
        (config("app", "etc/app.conf"), "/etc/app.conf"),
        (config("app", "/srv/app.conf"), "/srv/app.conf"),
    ],
)
def test_files_land_where_docker_puts_them(ref: FileRef, path: str) -> None:
    assert ref.path == path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            TaskOptions(secrets=(FileRef(FileKind.SECRET, "", "db", "db"),)),
            "^malformed secret reference$",
        ),
        (
            TaskOptions(configs=(FileRef(FileKind.CONFIG, "c1", "", "x"),)),
            "^malformed config reference$",
        ),
        (TaskOptions(secrets=(secret("db", "/"),)), "target / cannot be a file"),
        (TaskOptions(secrets=(secret("db", "/run/secrets/.."),)), "invalid target file name"),
        (
            TaskOptions(secrets=(FileRef(FileKind.SECRET, "s1", "db", ""),)),
            "^malformed file secret reference, invalid target file name provided$",
        ),
        (TaskOptions(secrets=(secret("db", "../../etc/shadow"),)), "invalid target file name"),
        (
            TaskOptions(secrets=(secret("a", "same"), secret("b", "same", obj_id="s2"))),
            "^secret references 'a' and 'b' have a conflicting target: 'same'$",
        ),
        (
            TaskOptions(secrets=(secret("a", "x"), secret("b", "/run/secrets/x", obj_id="s2"))),
            "conflicting target",
        ),
        (
            TaskOptions(configs=(config("a", "/etc/x"),), secrets=(secret("b", "/etc/x"),)),
            "a secret and a config have a conflicting target: '/etc/x'",
        ),
        (TaskOptions(secrets=(secret("db", uid="root"),)), "uid 'root' is not a number"),
        (TaskOptions(secrets=(secret("db", mode=0o1777),)), "mode 1777 is not a file mode"),
        (
            TaskOptions(secrets=(secret("db", uid="99999999999999999999"),)),
            "not a number from 0 to 4294967294",
        ),
        (TaskOptions(secrets=(secret("db", "/proc/x"),)), "target /proc/x cannot be a file"),
        (TaskOptions(configs=(config("c", "/sys/kernel/x"),)), "cannot be a file"),
        (TaskOptions(configs=(config("c", "/dev/null"),)), "cannot be a file"),
        (TaskOptions(secrets=(secret("db", "/run/secrets"),)), "cannot be a file"),
        (
            TaskOptions(secrets=(secret("a", "a"), secret("b", "a/b", obj_id="s2"))),
            "'/run/secrets/a/b' would be inside the file '/run/secrets/a'",
        ),
        (
            TaskOptions(secrets=(secret("a", "/etc/app"),), configs=(config("c", "/etc/app/x"),)),
            "would be inside the file",
        ),
    ],
)
def test_references_are_checked_in_swarmkit_s_words(options: TaskOptions, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        options.check()


def test_the_api_shape_goes_both_ways_and_never_holds_data() -> None:
    body = {
        "Name": "web",
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "tools",
                "Secrets": [{"File": {"Name": "pw", "UID": "33", "GID": "33", "Mode": 0o400},
                             "SecretID": "s1", "SecretName": "db"}],
                "Configs": [{"File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0",
                                      "Mode": 0o444}, "ConfigID": "c1", "ConfigName": "app"}],
            }
        },
    }  # fmt: skip
    req = request_of(ServiceSpecModel.model_validate(body))
    assert req.options.secrets == (FileRef(FileKind.SECRET, "s1", "db", "pw", "33", "33", 0o400),)
    assert req.options.configs[0].path == "/etc/app.conf"
    spec = ServiceRequest(**req.__dict__)
    shown = spec_json(_spec_of(spec), 0)["TaskTemplate"]["ContainerSpec"]
    assert shown["Secrets"] == body["TaskTemplate"]["ContainerSpec"]["Secrets"]  # type: ignore[index]
    assert shown["Configs"] == body["TaskTemplate"]["ContainerSpec"]["Configs"]  # type: ignore[index]


def _spec_of(req: ServiceRequest):  # type: ignore[no-untyped-def]
    from ferry.model.service import ServiceSpec

    return ServiceSpec(req.name, ContainerTemplate(req.image, (), options=req.options))


def test_a_runtime_target_and_unknown_fields_are_refused_by_name() -> None:
    for ref, named in (
        ({"Runtime": {}, "ConfigID": "c", "ConfigName": "x"}, "Configs.Runtime"),
        ({"File": {"Name": "x", "Extra": 1}, "ConfigID": "c", "ConfigName": "x"},
         "Configs.File.Extra"),
    ):  # fmt: skip
        body = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "a", "Configs": [ref]}}}
        with pytest.raises(InvalidArgument, match=f"Ferry does not support .*{named}"):
            request_of(ServiceSpecModel.model_validate(body))


# the CLI's reading, as the docker CLI's ------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "mode"), [("0400", 0o400), ("400", 400), ("0o440", 0o440), ("0x124", 0x124)]
)
def test_a_mode_is_go_s_number(text: str, mode: int) -> None:
    assert parse_mode(text) == mode


def test_flags_read_as_the_docker_cli_reads_them() -> None:
    assert parse_ref("db", "secret") == {
        "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 0o444}, "Name": "db"}  # fmt: skip
    full = parse_ref("src=db,target=pw,uid=33,gid=34,mode=0400", "secret")
    assert full == {"File": {"Name": "pw", "UID": "33", "GID": "34", "Mode": 0o400}, "Name": "db"}
    with pytest.raises(InvalidArgument, match="source is required"):
        parse_ref("target=pw", "secret")
    with pytest.raises(InvalidArgument, match=r"^invalid field in config request: bogus$"):
        parse_ref("source=db,bogus=1", "config")
    with pytest.raises(InvalidArgument, match="must be a key=value pair"):
        parse_ref("source=db,bogus", "secret")


# the manager: existence, removal while in use, hand-over --------------------------------------
async def _rig(rig: ManagerRig) -> tuple[ServiceOps, ObjectOps, ObjectOps]:
    await rig.add_node("n1", "h1")
    await rig.add_node("n2", "h2")
    await rig.hub.heartbeat("n1", images=("tools:latest",))
    await rig.feed.wait_for(rig.store.revision)
    services = ServiceOps(rig.store, rig.view, rig.feed, NetworkOps(rig.store, rig.view, rig.feed))
    made = [
        ObjectOps(k, store=rig.store, view=rig.view, feed=rig.feed, vault=rig.vault,
                  cluster_secrets=rig.nodes.secrets)
        for k in (Kind.SECRET, Kind.CONFIG)
    ]  # fmt: skip
    return services, made[0], made[1]


def _web(*refs: FileRef) -> ServiceRequest:
    secrets = tuple(r for r in refs if r.kind == FileKind.SECRET)
    configs = tuple(r for r in refs if r.kind == FileKind.CONFIG)
    return ServiceRequest("web", "tools", ("sleep", "600"),
                          options=TaskOptions(secrets=secrets, configs=configs))  # fmt: skip


async def test_a_service_names_only_objects_that_exist_under_that_name(rig: ManagerRig) -> None:
    services, secrets, _configs = await _rig(rig)
    made = await secrets.create("db", PLAIN, {})
    with pytest.raises(InvalidArgument, match=r"^secret not found: db$"):
        await services.create(_web(secret("db", obj_id="nope")))
    with pytest.raises(InvalidArgument, match=r"^secrets not found: other, db$"):
        await services.create(_web(secret("other", obj_id=made.obj_id),
                                   secret("db", "x", obj_id="gone")))  # fmt: skip
    with pytest.raises(InvalidArgument, match=r"^config not found: app$"):
        await services.create(_web(config("app")))
    svc = await services.create(_web(secret("db", obj_id=made.obj_id)))
    assert svc.spec.template.options.secrets[0].obj_id == made.obj_id


async def test_an_object_a_service_names_cannot_be_removed_until_it_no_longer_does(
    rig: ManagerRig,
) -> None:
    services, secrets, configs = await _rig(rig)
    db = await secrets.create("db", PLAIN, {})
    app = await configs.create("app", b"x=1", {})
    await services.create(_web(secret("db", obj_id=db.obj_id), config("app", obj_id=app.obj_id)))
    await services.create(replace(_web(secret("db", "b", obj_id=db.obj_id)), name="api"))
    with pytest.raises(InvalidArgument, match=(
        r"^rpc error: code = InvalidArgument desc = secret 'db' is in use by the following "
        r"services: api, web$")):  # fmt: skip
        await secrets.remove("db")
    with pytest.raises(
        InvalidArgument, match=r"config 'app' is in use by the following service: web$"
    ):
        await configs.remove(app.obj_id)
    await services.update("web", None, _web(), None)
    await services.remove("api")
    await secrets.remove("db")
    await configs.remove("app")
    assert not list(rig.mirror.entries(keys.OBJECT_USES))


async def test_a_service_named_after_the_removal_looked_cannot_slip_past(rig: ManagerRig) -> None:
    """The race the use key closes: a removal that saw no service must not commit once a
    service naming the object has."""
    services, secrets, _configs = await _rig(rig)
    db = await secrets.create("db", PLAIN, {})
    stale = rig.view.entity_version(keys.OBJECT_USES + db.obj_id)
    await services.create(_web(secret("db", obj_id=db.obj_id)))
    assert rig.view.entity_version(keys.OBJECT_USES + db.obj_id) != stale
    # and the service side: an object removed meanwhile fails the service's commit, and the
    # retry (the mirror now without it) is refused instead of expecting the key absent
    from ferry.manager import object_refs

    spec = services.find("web").spec
    ops, expect = object_refs.claims(rig.view, spec, "x")
    revision = await rig.store.commit([Delete(keys.SWARM_SECRETS + db.obj_id)])  # removed
    assert revision is not None
    assert await rig.store.commit(ops, expect) is None
    await rig.feed.wait_for(revision)
    with pytest.raises(InvalidArgument, match=r"^secret not found: db$"):
        object_refs.claims(rig.view, spec, "x")


async def test_only_the_node_running_the_task_gets_its_files(rig: ManagerRig) -> None:
    _services, secrets, configs = await _rig(rig)
    db = await secrets.create("db", PLAIN, {})
    app = await configs.create("app", b"x=1", {})
    refs = (secret("db", obj_id=db.obj_id), config("app", obj_id=app.obj_id))
    template = ContainerTemplate("tools", (), options=TaskOptions(secrets=refs[:1],
                                                                   configs=refs[1:]))  # fmt: skip
    task = Task("t1", "s1", "web", 1, template, 1, state=TaskState.ASSIGNED, node_id="n1")
    other = replace(task, task_id="t2", template=ContainerTemplate("tools", ()))
    revision = await rig.store.commit([Put(keys.TASKS + "t1", encode(task)),
                                       Put(keys.TASKS + "t2", encode(other))])  # fmt: skip
    assert revision is not None
    await rig.feed.wait_for(revision)
    files = TaskFiles(rig.view, secrets, configs)
    got = files.for_node("n1", "t1")
    assert {k: base64.b64decode(v) for k, v in got.items()} == {
        f"secret/{db.obj_id}": PLAIN, f"config/{app.obj_id}": b"x=1"}  # fmt: skip
    assert files.for_node("n1", "t2") == {}
    with pytest.raises(Forbidden):
        files.for_node("n2", "t1")  # another node
    stopping = replace(task, desired=TaskState.SHUTDOWN)
    revision = await rig.store.commit([Put(keys.TASKS + "t1", encode(stopping))])
    assert revision is not None
    await rig.feed.wait_for(revision)
    with pytest.raises(Forbidden):
        files.for_node("n1", "t1")  # not meant to run any more
    with pytest.raises(NotFound):
        files.for_node("n1", "t9")


# the node: files on a tmpfs, bound read-only --------------------------------------------------
def test_the_tmpfs_fits_every_file_in_whole_pages() -> None:
    refs = (secret("a"), secret("b", obj_id="s2"))
    data = {"secret/s1": b"x" * 5000, "secret/s2": b""}
    assert task_files.tmpfs_size(refs, data) == task_files.MIN_TMPFS_BYTES
    big = {"secret/s1": b"x" * (100 * 4096), "secret/s2": b"y"}
    assert task_files.tmpfs_size(refs, big) == (100 + 1 + 1 + 1) * 4096


def test_each_reference_is_bound_read_only_at_its_path(tmp_path: Path) -> None:
    refs = (secret("db", "pw"), config("app", "/etc/app.conf"))
    binds = task_files.bind_mounts(tmp_path, refs)
    assert [(b.target, b.source, b.read_only) for b in binds] == [
        ("/run/secrets/pw", str(tmp_path / "0"), True),
        ("/etc/app.conf", str(tmp_path / "1"), True),
    ]
    with pytest.raises(NotFound, match="no data for app"):
        task_files.write(tmp_path, refs, {"secret/s1": PLAIN})
