"""The sandbox image, built offline and named by a content hash of its recipe.

Two layers, so that editing the runner does not repeat the slow part:

1. **base** (`agentkit-sandbox-base:<hash>`, ~35 s once): `debootstrap --variant=minbase --include=python3 bookworm`
   into a temporary directory, packed and `docker import`ed. No registry and no pull: the Debian mirror is the only
   thing fetched, once.
2. **image** (`agentkit-sandbox:<hash>`, ~1 s): `FROM base`, the runner copied in, user, work dir and command set.
   The runner is `runner.py` (the command) and its sibling modules, every `runner*.py` of this folder, copied side
   by side into /opt/agentkit. The hash covers the base recipe, the Dockerfile (which names every runner file) and
   each runner file's bytes, so any change to any of them means a new tag.

`ensure_image()` is idempotent and returns in milliseconds when the image is there.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from agentkit.sandbox import engine
from agentkit.sandbox.errors import FIX_IMAGE, SandboxError, SandboxUnavailable
from agentkit.sandbox.limits import NOBODY, WORK_DIR

BASE_REPO = "agentkit-sandbox-base"
IMAGE_REPO = "agentkit-sandbox"
RUNNER_DIR_IN_IMAGE = "/opt/agentkit"
RUNNER_IN_IMAGE = f"{RUNNER_DIR_IN_IMAGE}/runner.py"

BASE_RECIPE = {
    "tool": "debootstrap",
    "suite": "bookworm",
    "variant": "minbase",
    "include": ["python3"],
    "strip": [
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
    ],
}

Progress = Callable[[str], None]


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:12]


def runner_files() -> list[Path]:
    """The runner's modules, the entry point first: everything the container runs of ours, so everything the
    image ships and its tag hashes."""
    here = Path(__file__).parent
    return [here / "runner.py", *sorted(here.glob("runner_*.py"))]


def base_tag() -> str:
    return f"{BASE_REPO}:{_digest(json.dumps(BASE_RECIPE, sort_keys=True))}"


def dockerfile() -> str:
    return "\n".join(
        [
            f"FROM {base_tag()}",
            f"COPY {' '.join(p.name for p in runner_files())} {RUNNER_DIR_IN_IMAGE}/",
            "ENV LANG=C.UTF-8 PYTHONUTF8=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 "
            f"HOME={WORK_DIR} PATH=/usr/local/bin:/usr/bin:/bin",
            f"WORKDIR {WORK_DIR}",
            f"USER {NOBODY}",
            f'CMD ["python3", "-I", "-u", "{RUNNER_IN_IMAGE}"]',
            f'LABEL {engine.LABEL}.image="1"',
            "",
        ]
    )


@functools.cache
def image_tag() -> str:
    """The tag of the image this code needs: changes whenever the recipe or the runner changes."""
    return f"{IMAGE_REPO}:{_digest(dockerfile(), *(p.read_bytes() for p in runner_files()))}"


def _exists(tag: str) -> bool:
    import docker.errors

    try:
        engine.client().api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


_seen: set[str] = set()


def forget(tag: str) -> None:
    """The engine said the image is gone: check again next time."""
    _seen.discard(tag)


def require_image(tag: str | None = None) -> str:
    """The image tag, or `SandboxUnavailable` saying how to build it (checked with the engine once per process)."""
    tag = tag or image_tag()
    if tag not in _seen:
        if not _exists(tag):
            raise SandboxUnavailable(f"the sandbox image {tag} is not built", fix=FIX_IMAGE)
        _seen.add(tag)
    return tag


def ensure_image(progress: Progress = lambda _: None, *, rebuild: bool = False) -> str:
    """Build whatever layer is missing (or both, with `rebuild`); return the image tag."""
    tag = image_tag()
    if _exists(tag) and not rebuild:
        progress(f"{tag} is up to date")
        return tag
    if rebuild or not _exists(base_tag()):
        build_base(progress)
    else:
        progress(f"{base_tag()} is up to date")
    progress(f"building {tag} (runner layer)")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        files = [("Dockerfile", dockerfile().encode())] + [(p.name, p.read_bytes()) for p in runner_files()]
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    for chunk in engine.client().api.build(
        fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, network_mode="none", decode=True
    ):
        if "error" in chunk:
            raise SandboxError(f"docker build of {tag} failed: {chunk['error']}")
        line = str(chunk.get("stream", "")).strip()
        if line:
            progress(line)
    progress(f"built {tag}")
    return tag


def build_base(progress: Progress) -> str:
    """debootstrap a minbase rootfs with python3 and import it as the base image (needs root and debootstrap)."""
    tag = base_tag()
    if shutil.which("debootstrap") is None:
        raise SandboxUnavailable("debootstrap is not installed", fix="bash scripts/ensure-docker.sh")
    if os.geteuid() != 0:
        raise SandboxUnavailable("building the base image needs root (debootstrap)", fix=f"sudo {FIX_IMAGE}")
    root = Path(tempfile.mkdtemp(prefix="agentkit-rootfs-", dir="/var/tmp"))
    try:
        cmd = [
            "debootstrap",
            f"--variant={BASE_RECIPE['variant']}",
            f"--include={','.join(BASE_RECIPE['include'])}",
        ]
        cmd += [str(BASE_RECIPE["suite"]), str(root)]
        if mirror := os.environ.get("AGENTKIT_DEBIAN_MIRROR"):
            cmd.append(mirror)
        progress("$ " + " ".join(cmd))
        _stream(cmd, progress)
        for rel in BASE_RECIPE["strip"]:
            target = root / str(rel)
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir(parents=True)
        tar_path = root.with_suffix(".tar")
        progress(f"packing the rootfs and importing it as {tag}")
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar_path), "."], check=True)
        try:
            repo, version = tag.split(":")
            engine.client().api.import_image(src=str(tar_path), repository=repo, tag=version)
        finally:
            tar_path.unlink(missing_ok=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    progress(f"built {tag}")
    return tag


def _stream(cmd: list[str], progress: Progress) -> None:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-20:]
        progress(line)
    if proc.wait() != 0:
        raise SandboxError(f"{cmd[0]} failed with exit code {proc.returncode}:\n" + "\n".join(tail))


def list_images() -> list[dict[str, object]]:
    """Every sandbox image (base and runner layers) with whether the current code uses it."""
    current = {image_tag(), base_tag()}
    out = []
    for repo in (BASE_REPO, IMAGE_REPO):
        for img in engine.client().api.images(name=repo):
            for tag in img.get("RepoTags") or []:
                out.append(
                    {"tag": tag, "id": img["Id"], "size": img.get("Size", 0), "current": tag in current}
                )
    return out


def prune_images() -> list[str]:
    """Remove sandbox images that the current code no longer uses; return their tags."""
    removed = []
    for img in list_images():
        if not img["current"]:
            engine.client().api.remove_image(str(img["tag"]), force=True)
            removed.append(str(img["tag"]))
    return removed


def leftover_build_dirs() -> list[Path]:
    """Temporary rootfs directories of interrupted builds."""
    return sorted(Path("/var/tmp").glob("agentkit-rootfs-*"))
