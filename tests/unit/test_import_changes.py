"""docker import -c: the Dockerfile instructions Docker's import takes, HEALTHCHECK and ONBUILD
among them, and one-line refusals of the rest."""

from __future__ import annotations

import pytest

from ferry.errors import InvalidArgument
from ferry.model.imageconfig import parse_image_config
from ferry.model.import_changes import CHANGE_KEYS, apply_changes

S = 1_000_000_000


def test_import_takes_exactly_the_instructions_docker_import_takes() -> None:
    assert set(CHANGE_KEYS) == {
        "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL",
        "USER", "VOLUME", "WORKDIR",
    }  # fmt: skip


@pytest.mark.parametrize("line", ["RUN true", "COPY a b", "FROM x", 'SHELL ["sh"]', "ARG A"])
def test_an_instruction_import_cannot_take_is_refused_by_name(line: str) -> None:
    with pytest.raises(
        InvalidArgument, match=f"^'{line.split(maxsplit=1)[0]}' is not a valid change"
    ):
        apply_changes([line])


def test_healthcheck_shell_form_with_every_option_is_a_cmd_shell_test_in_nanoseconds() -> None:
    config = apply_changes(
        [
            "HEALTHCHECK --interval=5s --timeout=1m30s --start-period=500ms --retries=4 "
            "CMD curl -f http://localhost/ || exit 1"
        ]
    )
    assert config == {
        "Healthcheck": {
            "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
            "Interval": 5 * S,
            "Timeout": 90 * S,
            "StartPeriod": S // 2,
            "Retries": 4,
        }
    }


def test_healthcheck_exec_form_without_options_leaves_every_duration_at_zero() -> None:
    config = apply_changes(['healthcheck cmd ["pg_isready", "-U", "x"]'])
    assert config["Healthcheck"] == {
        "Test": ["CMD", "pg_isready", "-U", "x"],
        "Interval": 0,
        "Timeout": 0,
        "StartPeriod": 0,
        "Retries": 0,
    }
    # and a container of the image runs it with Docker's defaults in the zero fields
    check = parse_image_config(config).healthcheck
    assert check is not None and check.resolved() is not None
    resolved = check.resolved()
    assert resolved is not None
    assert (resolved.argv(), resolved.interval_s, resolved.retries) == (
        ["pg_isready", "-U", "x"],
        30.0,
        3,
    )


def test_healthcheck_none_disables_the_check_and_replaces_an_earlier_one() -> None:
    config = apply_changes(["HEALTHCHECK CMD true", "HEALTHCHECK NONE"])
    assert config == {"Healthcheck": {"Test": ["NONE"]}}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK --interval=5s NONE", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK EXEC true", 'Unknown type "EXEC" in HEALTHCHECK \\(try CMD\\)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK --interval=5s", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK --interval 5s CMD true", "missing a value on flag: interval"),
        ("HEALTHCHECK --every=5s CMD true", "unknown flag: every"),
        ("HEALTHCHECK --retries=1 --retries=2 CMD true", "duplicate flag specified: retries"),
        ("HEALTHCHECK --retries=-1 CMD true", "--retries cannot be negative \\(-1\\)"),
        ("HEALTHCHECK --retries=x CMD true", "invalid --retries 'x'"),
        ("HEALTHCHECK --timeout=5 CMD true", "invalid HEALTHCHECK --timeout '5'"),
        ("HEALTHCHECK --interval=10us CMD true", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --start-interval=1s CMD true", "--start-interval is not supported"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ],
)
def test_a_malformed_healthcheck_is_refused_in_docker_words(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes([line])


def test_onbuild_keeps_each_trigger_as_written_in_order() -> None:
    config = apply_changes(["ONBUILD RUN make /app", "onbuild COPY . /src", "ENV A=1"])
    assert config == {"OnBuild": ["RUN make /app", "COPY . /src"], "Env": ["A=1"]}
    kept = apply_changes(["ONBUILD ADD x /x"], {"OnBuild": ["RUN a"]})
    assert kept["OnBuild"] == ["RUN a", "ADD x /x"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD from x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("ONBUILD", "ONBUILD requires at least one argument"),
    ],
)
def test_onbuild_refuses_docker_s_forbidden_triggers(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes([line])


def test_expose_takes_ports_ranges_and_protocols_as_docker_s_port_keys() -> None:
    config = apply_changes(["EXPOSE 80 53/UDP 9000-9002/tcp", "EXPOSE 132/sctp 65535"])
    assert config["ExposedPorts"] == {
        k: {}
        for k in ("80/tcp", "53/udp", "9000/tcp", "9001/tcp", "9002/tcp", "132/sctp", "65535/tcp")
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("EXPOSE 99999", "^invalid containerPort: 99999$"),
        ("EXPOSE 0", "^invalid containerPort: 0$"),
        ("EXPOSE 65536/udp", "^invalid containerPort: 65536$"),
        ("EXPOSE 90-80", "^invalid containerPort: 90-80$"),
        ("EXPOSE 80-", "^invalid containerPort: 80-$"),
        ("EXPOSE http", "^invalid containerPort: http$"),
        ("EXPOSE 80/foo", "^invalid proto: foo$"),
        ("EXPOSE 80 443/icmp", "^invalid proto: icmp$"),
        ("EXPOSE 8080:80", "EXPOSE 8080:80: an image exposes container ports only"),
    ],
)
def test_expose_refuses_a_port_docker_refuses_in_docker_s_words(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes([line])


@pytest.mark.parametrize("value", ["SIGQUIT", "quit", "sigwinch", "9", "15", "SIGRTMIN"])
def test_stopsignal_keeps_a_signal_ferry_can_send_as_written(value: str) -> None:
    assert apply_changes([f"STOPSIGNAL {value}"]) == {"StopSignal": value}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("SIGFOO", "^invalid signal: SIGFOO$"),
        ("FOO", "^invalid signal: FOO$"),
        ("0", "^invalid signal: 0$"),
        ("65", "^invalid signal: 65$"),
        ("-9", "^invalid signal: -9$"),
        ("SIG TERM", "^invalid signal: SIG TERM$"),
        ("RTMIN+3", "STOPSIGNAL RTMIN\\+3 is not supported"),
    ],
)
def test_stopsignal_refuses_an_unknown_signal(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes([f"STOPSIGNAL {value}"])


def test_a_relative_workdir_is_joined_onto_the_working_directory_so_far_as_docker_does() -> None:
    assert apply_changes(["WORKDIR relative/path"]) == {"WorkingDir": "/relative/path"}
    config = apply_changes(["WORKDIR /app", "WORKDIR src/../lib", "WORKDIR x"])
    assert config == {"WorkingDir": "/app/lib/x"}
    assert apply_changes(["WORKDIR /srv"], {"WorkingDir": "/old"}) == {"WorkingDir": "/srv"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('VOLUME [""]', "^VOLUME specified can not be an empty string$"),
        ("VOLUME data", "VOLUME data: invalid mount config: mount path must be absolute"),
        ('VOLUME ["/a", "b"]', "VOLUME b: invalid mount config"),
        ("USER a b", "invalid USER 'a b'"),
        ("USER :x", "invalid USER ':x'"),
        ("ENV A", "^ENV must have two arguments$"),
        ("LABEL a", "^LABEL must have two arguments$"),
        ("ENV A=1 B", "can't find = in 'B'"),
        ("LABEL =x", "^LABEL names can not be blank$"),
        ('LABEL a="b', "No closing quotation"),
    ],
)
def test_a_volume_user_env_or_label_docker_would_refuse_is_refused(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes([line])


@pytest.mark.parametrize(
    "line",
    ["ENV PATH=/x:$PATH", "WORKDIR $HOME", "EXPOSE ${PORT}", "LABEL a=$B", "USER $U",
     "STOPSIGNAL $S", "VOLUME $V"],
)  # fmt: skip
def test_a_variable_docker_would_expand_is_refused_not_stored_verbatim(line: str) -> None:
    with pytest.raises(InvalidArgument, match="Ferry does not expand variables"):
        apply_changes([line])


def test_a_shell_form_command_keeps_its_variables_for_the_shell() -> None:
    assert apply_changes(["CMD echo $HOME"]) == {"Cmd": ["/bin/sh", "-c", "echo $HOME"]}


def test_every_config_import_writes_is_one_a_container_can_be_made_of() -> None:
    config = apply_changes(
        ["EXPOSE 80-81/udp", "STOPSIGNAL SIGQUIT", "WORKDIR app", "USER 1000:1000", "VOLUME /d"]
    )
    image = parse_image_config(config)
    assert (image.exposed_ports, image.stop_signal, image.working_dir, image.user) == (
        ("80/udp", "81/udp"),
        "SIGQUIT",
        "/app",
        "1000:1000",
    )
