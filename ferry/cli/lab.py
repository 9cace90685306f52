"""ferry lab …: a multi-host Ferry on one machine, for learning, tests and benchmarks."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from ferry.cli.common import fail, handles_errors, print_table

lab_app = typer.Typer(
    rich_markup_mode=None,
    help="Run several Ferry hosts on this machine, in network namespaces.",
    no_args_is_help=True,
)

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Lab name")]


@lab_app.command("up")
@handles_errors
def up(
    name: NameOpt = "ferry",
    hosts: Annotated[int, typer.Option(help="Number of hosts (h1..hN), each with a ferryd")] = 3,
    clients: Annotated[int, typer.Option(help="Number of clients (c1..cM), without ferryd")] = 0,
    subnet: Annotated[str, typer.Option(help="Underlay subnet")] = "10.99.0.0/24",
) -> None:
    """Create a lab: hosts as network namespaces on an isolated underlay, one ferryd each."""
    from ferry.lab import lab

    started = time.monotonic()
    topo = lab.up(name, hosts, clients, subnet)
    elapsed = time.monotonic() - started
    print(
        f"Lab {topo.name} is up ({len(topo.hosts)} hosts, underlay {topo.subnet}) in {elapsed:.1f}s"
    )
    _print_nodes(topo.name)
    print(
        f"\nRegistry (Docker Hub's mirror for every host): {topo.registry_address}, "
        f"serving {_registry_contents()}"
    )
    print(f"Run a command on a host:  ferry lab exec{_name_flag(name)} h1 -- ferry info")
    print(f"Tear it all down:         ferry lab down{_name_flag(name)}")


def _registry_contents() -> str:
    from ferry.lab import images

    refs = sorted(images.store_contents(images.current_store()))
    return ", ".join(refs) if refs else "no images yet (build them with: ferry lab images)"


def _name_flag(name: str) -> str:
    return "" if name == "ferry" else f" --name {name}"


def _print_nodes(name: str) -> None:
    from ferry.lab import lab, records

    rows = []
    for status in lab.status(records.load(name)):
        node = status.node
        rows.append(
            [
                node.name,
                node.addr,
                node.netns,
                status.ferryd_pid or "-",
                status.ferryd_state,
                node.socket if node.runs_ferryd else "-",
            ]
        )
    print_table(["HOST", "ADDRESS", "NETNS", "PID", "STATE", "SOCKET"], rows)


@lab_app.command("ls")
@handles_errors
def ls(
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this lab")] = None,
) -> None:
    """List labs and their hosts."""
    from ferry.lab import records

    names = [name] if name else records.list_labs()
    if not names:
        print("No labs. Create one with: ferry lab up")
        return
    for i, lab_name in enumerate(names):
        if i:
            print()
        topo = records.load(lab_name)
        print(f"Lab {lab_name} (underlay {topo.subnet})")
        _print_nodes(lab_name)


@lab_app.command(
    "exec",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
)
@handles_errors
def exec_(
    host: Annotated[str, typer.Argument(help="Lab host or client (h1, c1, …)")],
    command: Annotated[list[str], typer.Argument(help="Command to run (after --)")],
    name: NameOpt = "ferry",
) -> None:
    """Run a command inside a lab host, with that host's ferryd as the target of ferry/docker."""
    from ferry.lab import records

    cmd = list(command)
    if cmd and cmd[0] == "--":  # click keeps the separator when options are not interspersed
        cmd = cmd[1:]
    if not cmd:
        fail("nothing to run: ferry lab exec HOST -- COMMAND [ARG...]", 2)
    argv, env = records.exec_argv(records.load(name), host, cmd)
    os.execvpe(argv[0], argv, env)


@lab_app.command("stop")
@handles_errors
def stop(
    host: Annotated[str, typer.Argument(help="Lab host, or registry")],
    name: NameOpt = "ferry",
    kill: Annotated[bool, typer.Option(help="SIGKILL instead of a clean stop")] = False,
) -> None:
    """Stop a host's ferryd (its containers keep running), or the lab's registry."""
    from ferry.lab import lab, records

    print(f"{lab.stop_node(records.load(name), host, kill=kill)} stopped")


@lab_app.command("start")
@handles_errors
def start(
    host: Annotated[str, typer.Argument(help="Lab host, or registry")], name: NameOpt = "ferry"
) -> None:
    """Start a host's ferryd again, or the lab's registry."""
    from ferry.lab import lab, records

    print(f"{lab.start_node(records.load(name), host)} started")


@lab_app.command("down")
@handles_errors
def down(name: NameOpt = "ferry") -> None:
    """Remove a lab and everything it made (also after a crash; safe to repeat)."""
    from ferry.lab import lab

    removed = lab.down(name)
    print(
        f"Lab {name} removed ({len(removed)} objects)"
        if removed
        else f"Lab {name}: nothing to remove"
    )


@lab_app.command("images")
@handles_errors
def images_() -> None:
    """Build the lab's images from Debian packages (once; cached under /var/cache/ferry) and
    fill the registry store every lab's registry serves."""
    from ferry.lab import images

    started = time.monotonic()
    built = images.build_all()
    rows = [
        [image.recipe.ref, f"{image.built_s:.0f}s" if image.built_s else "cached", image.layout]
        for image in built
    ]
    print_table(["IMAGE", "BUILD", "OCI LAYOUT"], rows)
    print(
        f"Registry store: {images.current_store()} "
        f"({time.monotonic() - started:.1f}s); labs serve it from their registry node"
    )


@lab_app.command("demo")
@handles_errors
def demo(
    name: NameOpt = "ferry",
    subnet: Annotated[str, typer.Option(help="Underlay subnet")] = "10.99.0.0/24",
) -> None:
    """Walk the five tutorials on a fresh 3-host lab with the lab registry's images (replaces a
    lab of the same name)."""
    from ferry.lab.demo import run_demo

    if not run_demo(name, subnet):
        raise typer.Exit(1)
