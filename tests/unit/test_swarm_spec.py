"""Docker's SwarmSpec on /swarm/update and /swarm/init: autolock, the task history limit and
the node certificates' expiry are what Ferry changes; any
other setting it does not run is refused by name, while the spec it reports (what the docker
CLI sends back) and Go's empty values pass."""

from __future__ import annotations

import pytest

from ferry.api.models.swarm import SwarmInitRequest, SwarmSpec
from ferry.errors import InvalidArgument


def test_the_spec_ferry_reports_goes_back_unchanged() -> None:
    reported = SwarmSpec.running(autolock=True, task_history=7, cert_expiry_s=7200).model_dump()
    assert reported["EncryptionConfig"] == {"AutoLockManagers": True}
    assert reported["Orchestration"] == {"TaskHistoryRetentionLimit": 7}
    assert SwarmSpec.model_validate(reported).unsupported() == []
    assert SwarmSpec.model_validate(reported).task_history() == 7
    assert reported["CAConfig"] == {"NodeCertExpiry": 7200 * 10**9}
    assert SwarmSpec.model_validate(reported).cert_expiry_s() == 7200


def test_the_cert_expiry_is_taken_in_nanoseconds_and_zero_is_unchanged() -> None:
    ninety_days = {"CAConfig": {"NodeCertExpiry": 7776000000000000}}  # docker-py's default
    assert SwarmSpec.model_validate(ninety_days).cert_expiry_s() == 90 * 24 * 3600
    assert SwarmSpec.model_validate(ninety_days).unsupported() == []
    assert SwarmSpec.model_validate({"CAConfig": {"NodeCertExpiry": 0}}).cert_expiry_s() is None
    with pytest.raises(InvalidArgument, match=r"invalid CAConfig.NodeCertExpiry"):
        SwarmSpec.model_validate({"CAConfig": {"NodeCertExpiry": "1h"}}).cert_expiry_s()


def test_what_the_docker_cli_sends_for_autolock_alone_passes() -> None:
    # Go's encoding of a spec decoded from Ferry's and re-encoded: zero values where unset
    sent = {
        "Name": "default",
        "Orchestration": {},
        "Raft": {"ElectionTick": 0, "HeartbeatTick": 0},
        "Dispatcher": {},
        "CAConfig": {},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": True},
    }
    spec = SwarmSpec.model_validate(sent)
    assert spec.unsupported() == []
    assert spec.EncryptionConfig.AutoLockManagers


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        ({"Orchestration": {"TaskHistoryRetention": 3}}, "Orchestration.TaskHistoryRetention=3"),
        ({"CAConfig": {"ExternalCAs": [{"URL": "x"}]}}, "CAConfig.ExternalCAs"),
        ({"Dispatcher": {"HeartbeatPeriod": 1}}, "Dispatcher.HeartbeatPeriod=1"),
        ({"Labels": {"team": "a"}}, "Labels.team"),
        ({"Name": "prod"}, "Name=prod"),
    ],
)
def test_a_setting_ferry_does_not_run_is_named(sent: dict[str, object], named: str) -> None:
    assert any(named in item for item in SwarmSpec.model_validate(sent).unsupported())


def test_init_takes_autolock_from_the_spec() -> None:
    body = SwarmInitRequest.model_validate(
        {"Spec": {"EncryptionConfig": {"AutoLockManagers": True}}}
    )
    assert body.Spec.EncryptionConfig.AutoLockManagers
    assert not SwarmInitRequest.model_validate({}).Spec.EncryptionConfig.AutoLockManagers


@pytest.mark.parametrize("limit", [0, 3, -1])
def test_the_task_history_limit_is_honoured_not_refused(limit: int) -> None:
    spec = SwarmSpec.model_validate({"Orchestration": {"TaskHistoryRetentionLimit": limit}})
    assert (spec.unsupported(), spec.task_history()) == ([], limit)
    assert SwarmSpec.model_validate({}).task_history() is None


def test_a_task_history_limit_that_is_not_an_integer_is_refused() -> None:
    spec = SwarmSpec.model_validate({"Orchestration": {"TaskHistoryRetentionLimit": "3"}})
    with pytest.raises(InvalidArgument, match="TaskHistoryRetentionLimit"):
        spec.task_history()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"DataPathAddr": "10.0.0.9"}, "--data-path-addr 10.0.0.9"),
    ],
)
def test_what_init_cannot_do_is_refused_by_its_flag(body: dict[str, object], named: str) -> None:
    from ferry.api.models.swarm import refuse

    with pytest.raises(InvalidArgument, match=f"^Ferry does not support {named}"):
        refuse(SwarmInitRequest.model_validate(body).refused())
    for port in (0, 4789, 4790, 7789):  # a data path port is Ferry's to take now
        assert SwarmInitRequest.model_validate({"DataPathPort": port}).refused() == []


@pytest.mark.parametrize(("asked", "taken"), [(0, 0), (4789, 4789), (7789, 7789), (1024, 1024)])
def test_init_takes_a_data_path_port_and_0_leaves_the_default_to_the_host(
    asked: int, taken: int
) -> None:
    assert SwarmInitRequest.model_validate({"DataPathPort": asked}).data_path_port() == taken


@pytest.mark.parametrize("port", [1, 80, 1023, 49152, 51820, 65535])
def test_an_out_of_range_data_path_port_is_refused_in_moby_s_words(port: int) -> None:
    expected = rf"^VXLAN UDP port number is not in valid range \(1024-49151\): {port}$"
    with pytest.raises(InvalidArgument, match=expected):
        SwarmInitRequest.model_validate({"DataPathPort": port}).data_path_port()
