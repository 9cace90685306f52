import pytest

from ferry.cli.gotemplate import render
from ferry.errors import InvalidArgument

CONTAINER = {
    "Name": "/web",
    "State": {"Running": True, "Pid": 4242, "ExitCode": 0},
    "Config": {"Labels": {"com.example.tier": "front"}, "Cmd": ["sleep", "60"], "Env": []},
    "NetworkSettings": {
        "Networks": {
            "blue": {"IPAddress": "10.0.1.3", "Aliases": None},
            "red": {"IPAddress": "10.0.2.7", "Aliases": ["db"]},
        }
    },
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Name}}", "/web"),
        ("{{.State.Running}} {{.State.Pid}}", "true 4242"),
        ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.0.1.3 10.0.2.7 "),
        (
            "{{range $n, $net := .NetworkSettings.Networks}}{{$n}}={{$net.IPAddress}};{{end}}",
            "blue=10.0.1.3;red=10.0.2.7;",
        ),
        ('{{index .Config.Labels "com.example.tier"}}', "front"),
        ("{{json .Config.Cmd}}", '["sleep","60"]'),
        ("{{.Config.Cmd}} {{.Config.Labels}}", "[sleep 60] map[com.example.tier:front]"),
        ("{{.NetworkSettings.Networks.blue.Aliases}}", "<no value>"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if not .State.Running}}up{{else}}down{{end}}", "down"),
        ("{{with .State}}{{.ExitCode}}{{end}}", "0"),
        ("{{range .Config.Env}}x{{else}}no env{{end}}", "no env"),
        ('{{join .Config.Cmd ","}} {{len .Config.Cmd}}', "sleep,60 2"),
        ("{{.Name | upper}}", "/WEB"),
        ('{{(index .NetworkSettings.Networks "red").IPAddress}}', "10.0.2.7"),
        ('{{$red := index .NetworkSettings.Networks "red"}}{{$red.Aliases}}', "[db]"),
        ('{{len (index .NetworkSettings.Networks "red").Aliases}}', "1"),
        (
            '{{printf "%s has pid %d (%q) 100%%" .Name .State.Pid .Name}}',
            '/web has pid 4242 ("/web") 100%',
        ),
        ("{{printf}}", None),
        # what a review found
        ("{{if not .State.Running}}a{{else if .Nope}}b{{end}}", ""),
        ("{{if .Nope}}a{{else if .State.Running}}b{{else}}c{{end}}", "b"),
        ("{{if .Nope}}a{{else if .Nope2}}b{{else}}c{{end}}", "c"),
        ("{{with .Config.Env}}{{.}}{{else}}{{.Name}}{{end}}", "/web"),
        ("{{if .ManagerStatus}}{{.ManagerStatus.Leader}}{{else}}worker{{end}}", "worker"),
        ('{{index .Config.Labels "com.docker.compose.project"}}.', "."),
        ('{{split "abc" ""}}', "[a b c]"),
        ('{{"\\x41\\t\\101"}}', "A\tA"),
        ('{{printf "%-6s|%5.1f|%x|%d" "ab" 3.14159 255 7}}', "ab    |  3.1|ff|7"),
        ('{{print 1 2}} {{print "a" "b"}}', "1 2 ab"),
        ("{{if gt (len .Config.Cmd) 1}}many{{end}}", "many"),
        ("{{if\t.State.Running}}up{{end}}", "up"),
        (
            "{{range $k, $v := .NetworkSettings.Networks}}{{range $k, $v := $.Config.Cmd}}"
            "{{end}}{{$k}} {{end}}",
            "blue red ",
        ),
        ("{{range .Config.Cmd -}}\n   {{.}}\n{{- end}}", "sleep60"),
        ("{{/* a comment */}}ok", "ok"),
        ('{{if eq .Name "/web" "/db"}}match{{end}}', "match"),
        ("{{range $i, $arg := .Config.Cmd}}{{$i}}:{{$arg}} {{end}}", "0:sleep 1:60 "),
        ("{{range .NetworkSettings.Networks}}{{$.Name}} {{end}}", "/web /web "),
    ],
)
def test_docker_inspect_formats_render_as_go_renders_them(
    template: str, expected: str | None
) -> None:
    if expected is None:  # a clear error, not a wrong answer
        with pytest.raises(InvalidArgument):
            render(template, CONTAINER)
        return
    assert render(template, CONTAINER) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Nope}}", 'map has no entry for key "Nope"'),
        ("{{.State.Pid.X}}", "can't evaluate field X"),
        ("{{range .Config.Cmd}}", "has no {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{frobnicate .Name}}", "frobnicate is not a function"),
        ("{{$x}}", "undefined variable $x"),
        ("{{index .Config.Cmd 5}}", "index of"),
        ("{{index .Config.Cmd -1}}", "index of"),
        ("{{and}}", "error calling and"),
        ("{{else}}", "unexpected {{else}}"),
        ("{{(.Name}}", "unclosed"),
        ("{{.Name)}}", "unexpected \\)"),
    ],
)
def test_mistakes_are_one_clear_error(template: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("$", r"\$").replace("{", r"\{")):
        render(template, CONTAINER)
