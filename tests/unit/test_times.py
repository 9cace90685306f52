"""Timestamps: stored as Docker writes them, shown as Docker's human durations."""

import pytest

from ferry.model.times import epoch, human_duration, now_iso, since


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (61, "About a minute"),
        (45 * 60, "45 minutes"),
        (3600, "About an hour"),
        (30 * 3600, "30 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_durations_read_as_docker_prints_them(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_timestamps_round_trip_and_an_unset_one_is_zero() -> None:
    stamp = now_iso()
    assert stamp.endswith("Z")
    assert since(stamp) == "Less than a second"
    assert epoch("1970-01-01T00:01:00Z") == 60.0
    assert epoch("") == 0.0
    assert since("1970-01-01T00:00:00Z", now=100) == "About a minute"
