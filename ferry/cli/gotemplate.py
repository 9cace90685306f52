"""The part of Go's text/template that ``docker inspect --format`` users write, over the JSON an
inspect returns: ``{{.A.B}}``, ``{{json .X}}``, ``{{index .M "key"}}``, ``{{range $k, $v := .M}}``,
``{{if}}``/``{{with}}``/``{{else}}``/``{{end}}``, ``{{(index .M "k").IPAddress}}``, pipes,
``printf`` and ``{{-``/``-}}`` trimming.

Values print as Go prints the decoded JSON (``map[a:1 b:2]``, ``[x y]``, ``<no value>``), and
a key that is not there is an error, as with the docker CLI (``missingkey=error``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import InvalidArgument

# one token of an action: a string, a number, a variable or field chain, a word, a pipe, :=,
# ",", or a parenthesis (a closing one may be followed by a field chain: ``(index .M "k").IP``)
_TOKEN = re.compile(
    r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+(?:\.\d+)?)|(\$\w*(?:\.\w+)*)|(\.(?:\w+(?:\.\w+)*)?)'
    r"|(\w+)|(\|)|(:=)|(,)|(\()|\)((?:\.\w+)*))"
)


@dataclass
class _Arg:
    kind: str  # "str" | "int" | "var" | "field" | "word" | "sub" (a parenthesised pipeline)
    text: str  # for "sub": the field chain that follows the closing parenthesis
    sub: _Pipeline | None = None


@dataclass
class _Pipeline:
    declared: list[str]  # variables set by ``$x := ...`` or ``$k, $v := ...``
    commands: list[list[_Arg]]


@dataclass
class _Block:
    """``range``/``if``/``with`` (or the whole template, ``kind`` "root")."""

    kind: str
    pipeline: _Pipeline | None = None
    body: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)
    in_else: bool = False
    chained: bool = False  # opened by ``{{else if}}``/``{{else with}}``: its ``{{end}}`` is shared


class _Missing:
    """A value Go prints as ``<no value>``."""


def _fail(action: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"template: executing {{{{{action}}}}}: {why}")


def _parse_pipeline(action: str) -> _Pipeline:
    tokens: list[tuple[str | None, ...]] = []
    pos = 0
    while pos < len(action.rstrip()):
        match = _TOKEN.match(action, pos)
        if match is None:
            raise InvalidArgument(f"template: cannot parse {{{{{action}}}}} at {action[pos:]!r}")
        pos = match.end()
        tokens.append(match.groups())
    pipeline, used = _pipeline_of(tokens, 0, action)
    if used < len(tokens):
        raise InvalidArgument(f"template: unexpected ) in {{{{{action}}}}}")
    return pipeline


def _pipeline_of(
    tokens: list[tuple[str | None, ...]], i: int, action: str
) -> tuple[_Pipeline, int]:
    """The pipeline starting at ``tokens[i]``, up to the end or to an unmatched ``)`` (left
    for the caller), and the index after it."""
    args: list[_Arg] = []
    commands: list[list[_Arg]] = []
    declared: list[str] = []
    while i < len(tokens):
        string, raw, number, var, path, word, pipe, assign, comma, opening, closing = tokens[i]
        if closing is not None:
            break
        i += 1
        if assign or comma:
            if assign and (commands or not all(a.kind == "var" for a in args)):
                raise InvalidArgument(f"template: bad declaration in {{{{{action}}}}}")
            if assign:
                declared, args = [a.text for a in args], []
        elif pipe:
            commands.append(args)
            args = []
        elif opening:
            sub, i = _pipeline_of(tokens, i, action)
            if i >= len(tokens):
                raise InvalidArgument(f"template: unclosed ( in {{{{{action}}}}}")
            args.append(_Arg("sub", tokens[i][-1] or "", sub))
            i += 1
        elif string:
            args.append(_Arg("str", _unquote(string, action)))
        elif raw:
            args.append(_Arg("str", raw[1:-1]))
        elif number:
            args.append(_Arg("int", number))
        elif var:
            args.append(_Arg("var", var))
        elif path:
            args.append(_Arg("field", path))
        else:
            args.append(_Arg("word", word or ""))
    commands.append(args)
    if any(not c for c in commands):
        raise InvalidArgument(f"template: empty command in {{{{{action}}}}}")
    return _Pipeline(declared, commands), i


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unquote(literal: str, action: str) -> str:
    """A Go double-quoted string: backslash escapes, including \\xHH, \\uHHHH and octal."""
    try:
        return re.sub(
            r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[0-7]{3}|.)",
            lambda m: (
                chr(int(m.group(1)[1:], 16)) if m.group(1)[0] in "xu" and len(m.group(1)) > 1
                else chr(int(m.group(1), 8)) if m.group(1)[0] in "01234567"
                else _ESCAPES.get(m.group(1), m.group(1))
            ),
            literal[1:-1],
        )  # fmt: skip
    except ValueError:
        raise InvalidArgument(f"template: bad string {literal} in {{{{{action}}}}}") from None


def _pieces(template: str) -> list[str]:
    """Text and actions alternating (text first), with ``{{- `` and `` -}}`` applied to the
    text beside them and the braces and markers taken off the actions."""
    pieces = re.split(r"({{.*?}})", template, flags=re.S)
    for i in range(1, len(pieces), 2):
        action = pieces[i][2:-2]
        if re.match(r"-(\s|$)", action):
            action = action[1:]
            pieces[i - 1] = pieces[i - 1].rstrip()
        if re.search(r"(^|\s)-$", action):
            action = action[:-1]
            pieces[i + 1] = pieces[i + 1].lstrip()
        pieces[i] = action.strip()
    return pieces


def _parse(template: str) -> _Block:
    root = _Block("root")
    stack = [root]
    for i, piece in enumerate(_pieces(template)):
        top = stack[-1]
        target = top.otherwise if top.in_else else top.body
        if i % 2 == 0:
            if piece:
                target.append(piece)
            continue
        head, *more = piece.split(None, 1) if piece else [""]
        rest = more[0] if more else ""
        if piece.startswith("/*"):
            continue
        if head in ("range", "if", "with"):
            block = _Block(head, _parse_pipeline(rest))
            target.append(block)
            stack.append(block)
        elif head == "else":
            if top.kind == "root" or top.in_else:
                raise InvalidArgument("template: unexpected {{else}}")
            top.in_else = True
            kind, *cond = rest.split(None, 1) if rest else [""]
            if kind in ("if", "with") and cond:
                block = _Block(kind, _parse_pipeline(cond[0]), chained=True)
                top.otherwise.append(block)
                stack.append(block)
            elif rest:
                raise InvalidArgument(f"template: unexpected {{{{else {rest}}}}}")
        elif head == "end":
            if top.kind == "root":
                raise InvalidArgument("template: unexpected {{end}}")
            while stack.pop().chained:
                pass
        else:
            target.append(_parse_pipeline(piece))
    if len(stack) > 1:
        raise InvalidArgument(f"template: {{{{{stack[-1].kind}}}}} has no {{{{end}}}}")
    return root


def _go_str(value: Any) -> str:
    if value is None or isinstance(value, _Missing):
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_str(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_str(v) for v in value) + "]"
    return str(value)


def _truth(value: Any) -> bool:
    return not (value is None or isinstance(value, _Missing) or value in (False, 0, "", [], {}))


def _index(value: Any, *keys: Any) -> Any:
    """Go's ``index``: a key a map lacks gives its zero value ("" in a map of strings, like
    labels), an index out of range is an error."""
    for key in keys:
        if isinstance(value, dict):
            strings = all(isinstance(v, str) for v in value.values())
            value = value.get(key, "" if strings else None)
        elif isinstance(value, (list, str)) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            raise InvalidArgument(f"template: index of {_go_str(value)} with {key!r}")
    return value


def _printf(fmt: str, *args: Any) -> str:
    """Go's Sprintf for the verbs templates use (%s %v %d %f %x %q %t %%), with flags, width
    and precision (``%-20s``, ``%.1f``)."""
    values = iter(args)

    def verb(match: re.Match[str]) -> str:
        spec, kind = match.group(1), match.group(2)
        if kind == "%":
            return "%"
        value = next(values, _Missing())
        if kind == "q":
            value, kind = json.dumps(_go_str(value)), "s"
        elif kind in "vt":
            value, kind = _go_str(value), "s"
        elif kind == "s":
            value = _go_str(value)
        elif kind == "x" and isinstance(value, str):
            value, kind = value.encode().hex(), "s"
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"%!{kind}({_go_str(value)})"  # as Go marks a wrong operand
        elif kind in "dx":
            value = int(value)
        return f"%{spec}{kind}" % value

    return re.sub(r"%([-+# 0]*\d*(?:\.\d+)?)([svdfxqt%])", verb, fmt)


def _print(*args: Any) -> str:
    """Go's ``print``: a space between two operands when neither is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += _go_str(arg)
    return out


def _split(text: str, sep: str) -> list[str]:
    return list(text) if sep == "" else text.split(sep)


FUNCS: dict[str, Callable[..., Any]] = {
    "printf": _printf,
    "json": lambda v: json.dumps(v, separators=(",", ":")),
    "index": _index,
    "len": len,
    "join": lambda items, sep: sep.join(_go_str(i) for i in items),
    "split": _split,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "title": lambda s: str(s).title(),
    "print": _print,
    "println": lambda *a: " ".join(_go_str(v) for v in a) + "\n",
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "not": lambda a: not _truth(a),
    "and": lambda *a: next((v for v in a if not _truth(v)), a[-1]),
    "or": lambda *a: next((v for v in a if _truth(v)), a[-1]),
}


class _Run:
    def __init__(self, data: Any) -> None:
        self.vars: dict[str, Any] = {"$": data}
        self.out: list[str] = []
        # In an if/with condition a key that is not there is false: Docker leaves empty
        # optional fields out ({{if .ManagerStatus}} on a worker), elsewhere it is an error.
        self._testing = False

    def _field(self, base: Any, chain: list[str], action: str) -> Any:
        for name in chain:
            if not isinstance(base, dict):
                raise _fail(action, f"can't evaluate field {name} in {_go_str(base)}")
            if name not in base:
                if self._testing:
                    return _Missing()
                raise _fail(action, f'map has no entry for key "{name}"')
            base = base[name]
        return base

    def _arg(self, arg: _Arg, dot: Any, action: str) -> Any:
        if arg.kind in ("str", "int"):
            if arg.kind == "str":
                return arg.text
            return float(arg.text) if "." in arg.text else int(arg.text)
        if arg.kind in ("field", "sub"):
            base = dot if arg.sub is None else self.pipeline(arg.sub, dot)
            return self._field(base, [n for n in arg.text.split(".") if n], action)
        if arg.kind == "var":
            name, *chain = arg.text.split(".")
            if name not in self.vars:
                raise _fail(action, f"undefined variable {name}")
            return self._field(self.vars[name], chain, action)
        constants: dict[str, Any] = {"true": True, "false": False, "nil": None}
        if arg.text in constants:
            return constants[arg.text]
        raise _fail(action, f'function "{arg.text}" not defined')

    def pipeline(self, pipe: _Pipeline, dot: Any) -> Any:
        action = " | ".join(" ".join(a.text for a in c) for c in pipe.commands)
        value: Any = _Missing()
        for i, command in enumerate(pipe.commands):
            head = command[0]
            if head.kind == "word" and head.text in FUNCS:
                args = [self._arg(a, dot, action) for a in command[1:]]
                if i > 0:
                    args.append(value)
                try:
                    value = FUNCS[head.text](*args)
                except InvalidArgument:
                    raise
                except Exception as exc:  # any operand Go would refuse: one clear line
                    raise _fail(action, f"error calling {head.text}: {exc}") from None
            elif len(command) > 1:
                raise _fail(action, f"{head.text} is not a function")
            else:
                value = self._arg(head, dot, action)
        return value

    def block(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, str):
                self.out.append(node)
            elif isinstance(node, _Pipeline):
                value = self.pipeline(node, dot)
                if node.declared:
                    self.vars[node.declared[-1]] = value
                else:
                    self.out.append(_go_str(value))
            else:
                self._control(node, dot)

    def _control(self, node: _Block, dot: Any) -> None:
        assert node.pipeline is not None
        declared = node.pipeline.declared
        outer = dict(self.vars)  # variables declared inside end with the block, as in Go
        self._testing = node.kind != "range"
        try:
            value = self.pipeline(node.pipeline, dot)
        finally:
            self._testing = False
        if declared and node.kind != "range":
            self.vars[declared[-1]] = value
        if node.kind == "if":
            self.block(node.body if _truth(value) else node.otherwise, dot)
        elif node.kind == "with":
            if _truth(value):
                self.block(node.body, value)
            else:
                self.block(node.otherwise, dot)
        else:
            items = _range_items(value)
            for key, item in items:
                if len(declared) == 2:
                    self.vars[declared[0]], self.vars[declared[1]] = key, item
                elif declared:
                    self.vars[declared[0]] = item
                self.block(node.body, item)
            if not items:
                self.block(node.otherwise, dot)
        self.vars = outer


def _range_items(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value)]
    if isinstance(value, list):
        return list(enumerate(value))
    if value is None or isinstance(value, _Missing):
        return []
    if isinstance(value, int):
        return [(i, i) for i in range(value)]
    raise InvalidArgument(f"template: range can't iterate over {_go_str(value)}")


def render(template: str, data: Any) -> str:
    """The template applied to one decoded JSON value; errors are ``InvalidArgument``."""
    run = _Run(data)
    run.block(_parse(template).body, data)
    return "".join(run.out)
