"""Docker's SwarmSpec on /swarm/update and /swarm/init: autolock is what Ferry changes; any
other setting it does not run is refused by name, while the spec it reports (what the docker
CLI sends back) and Go's empty values pass."""

from __future__ import annotations

import pytest

from ferry.api.models.swarm import SwarmInitRequest, SwarmSpec


def test_the_spec_ferry_reports_goes_back_unchanged() -> None:
    reported = SwarmSpec.running(autolock=True).model_dump()
    assert reported["EncryptionConfig"] == {"AutoLockManagers": True}
    assert SwarmSpec.model_validate(reported).unsupported() == []


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
        ({"Orchestration": {"TaskHistoryRetentionLimit": 3}}, "TaskHistoryRetentionLimit=3"),
        ({"CAConfig": {"NodeCertExpiry": 3600}}, "CAConfig.NodeCertExpiry=3600"),
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
