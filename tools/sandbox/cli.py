"""`agentkit sandbox build | status | prune`: build the image, say what is there, remove leftovers.

`register(subparsers)` is wired into `agentkit/cli.py` lazily; each command returns an exit code and turns a
`SandboxUnavailable` into its message (which ends with the command that fixes it) instead of a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from collections.abc import Callable
from typing import Any

from agentkit.sandbox.errors import SandboxError, SandboxUnavailable


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("sandbox", help="the Docker sandbox for model-written code")
    sub = group.add_subparsers(dest="sandbox_command", required=True)

    build = sub.add_parser("build", help="build the sandbox image (offline, once; fast when it is there)")
    build.add_argument("--rebuild", action="store_true", help="rebuild both layers even if they exist")
    build.add_argument("--no-check", action="store_true", help="skip the smoke test in a real sandbox")
    build.add_argument(
        "--image", default="default", help="a built-in image: default, or data (numpy, pandas, matplotlib)"
    )
    build.add_argument("--name", help="build a custom image of this name (with --python and --debian)")
    build.add_argument(
        "--python", action="append", default=[], metavar="REQ", help="a Python package (repeatable)"
    )
    build.add_argument(
        "--debian", action="append", default=[], metavar="PKG", help="a Debian package (repeatable)"
    )
    build.set_defaults(func=_guard(cmd_build))

    status = sub.add_parser("status", help="engine, image and sandbox containers on this machine")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=_guard(cmd_status))

    prune = sub.add_parser("prune", help="remove orphaned containers, stale images and interrupted builds")
    prune.add_argument("--all", action="store_true", help="also remove sandboxes of live processes")
    prune.set_defaults(func=_guard(cmd_prune))


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except SandboxError as exc:
            _console().print(f"[red]error:[/red] {exc}")
            return 1

    return run


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def cmd_build(args: argparse.Namespace) -> int:
    from agentkit.sandbox import image

    console = _console()
    t0 = time.monotonic()
    spec = _spec(args)
    with console.status("checking the sandbox image") as status:

        def progress(line: str) -> None:
            if line.startswith(("I: Retrieving", "I: Validating", "I: Unpacking", "I: Configuring", "Step")):
                status.update(f"[dim]{line[:100]}[/dim]")
            else:
                console.print(f"[dim]{line}[/dim]")

        tag = image.ensure_image(progress, rebuild=args.rebuild, spec=spec)
        if not args.no_check:
            status.update("smoke test: starting a sandbox")
            check = asyncio.run(_smoke_test(tag))
            console.print(f"smoke test: {check}")
    console.print(f"[green]ready[/green]: {tag} ({time.monotonic() - t0:.1f} s)")
    return 0


def _spec(args: argparse.Namespace) -> Any:
    from agentkit.sandbox import image

    if args.name or args.python or args.debian:
        if not args.name:
            raise SandboxError(
                "a custom image needs a name: --name NAME (it is tagged agentkit-sandbox-NAME:<hash>)"
            )
        if args.name in image.BUILTIN:
            raise SandboxError(
                f"{args.name} is a built-in image: build it with --image {args.name}, or pick a new name"
            )
        try:
            return image.ImageSpec(args.name, python=tuple(args.python), debian=tuple(args.debian))
        except ValueError as exc:
            raise SandboxError(str(exc)) from exc
    if args.image not in image.BUILTIN:
        raise SandboxError(
            f"no built-in image {args.image!r}: use {', '.join(image.BUILTIN)} or --name for your own"
        )
    return image.BUILTIN[args.image]


async def _smoke_test(tag: str) -> str:
    from agentkit.sandbox.sandbox import Sandbox

    t0 = time.perf_counter()
    async with Sandbox(image_tag=tag) as sb:
        started = time.perf_counter() - t0
        result = await sb.run_python("import sys; print(sys.version.split()[0])")
        net = await sb.run_python(
            "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), 1)\n    print('open')\n"
            "except OSError:\n    print('none')"
        )
    if not result.ok or net.stdout.strip() != "none":
        raise SandboxError(f"the sandbox smoke test failed: {result} {net}")
    return f"python {result.stdout.strip()}, network {net.stdout.strip()}, started in {started * 1000:.0f} ms"


def cmd_status(args: argparse.Namespace) -> int:
    from agentkit.sandbox import engine, image

    info: dict[str, Any] = {
        "engine": None,
        "image": image.image_tag(),
        "image_built": False,
        "base": image.base_tag(),
    }
    try:
        version = engine.client().version()
        info["engine"] = f"{version.get('Version')} (API {version.get('ApiVersion')})"
        info["images"] = image.list_images()
        info["image_built"] = any(i["tag"] == info["image"] for i in info["images"])
        info["containers"] = engine.list_sandboxes()
    except SandboxUnavailable as exc:
        info["error"] = str(exc)
    info["leftover_build_dirs"] = [str(p) for p in image.leftover_build_dirs()]
    ready = info["engine"] is not None and info["image_built"]
    if args.json:
        print(json.dumps(info, default=str))
        return 0 if ready else 1
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"engine:  {info['engine'] or '[red]not available[/red] — ' + info.get('error', '')}")
    console.print(
        f"image:   {info['image']} {'[green]built[/green]' if info['image_built'] else '[red]missing[/red] — run: agentkit sandbox build'}"
    )
    if info.get("images"):
        table = Table("image", "size", "used by this code")
        for img in info["images"]:
            table.add_row(
                str(img["tag"]),
                f"{int(img['size']) / 2**20:.0f} MiB",
                "yes" if img["current"] else "no (prune)",
            )
        console.print(table)
    containers = info.get("containers", [])
    if containers:
        table = Table("container", "status", "owner", "owner alive")
        for c in containers:
            table.add_row(
                c["id"][:12],
                c["status"],
                c["owner"],
                {True: "yes", False: "no (prune)", None: "other host"}[c["alive"]],
            )
        console.print(table)
    else:
        console.print("containers: none")
    if info["leftover_build_dirs"]:
        console.print(f"interrupted builds: {', '.join(info['leftover_build_dirs'])} (prune)")
    return 0 if ready else 1


def cmd_prune(args: argparse.Namespace) -> int:
    from agentkit.sandbox import engine, image

    console = _console()
    removed = engine.reap_orphans(everything=args.all)
    console.print(f"containers removed: {len(removed)}")
    stale = image.prune_images()
    console.print(f"stale images removed: {', '.join(stale) or 'none'}")
    dirs = image.leftover_build_dirs()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    console.print(f"interrupted build dirs removed: {len(dirs)}")
    return 0
