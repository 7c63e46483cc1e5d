"""The sandbox images, built offline and named by a content hash of their recipe.

An `ImageSpec` names an image and lists what it adds: Debian packages (installed by debootstrap into its base) and
Python packages (wheels for the image's Python resolved by the host's pip, copied into the image's dist-packages).
`DEFAULT` adds nothing; `DATA` ("data") adds numpy, pandas and matplotlib. A spec's tag hashes the spec, the base
recipe and the runner: `agentkit-sandbox:<hash>` for the default, `agentkit-sandbox-<name>:<hash>` for the others.

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
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentkit.sandbox import engine
from agentkit.sandbox.errors import SandboxError, SandboxUnavailable
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
PYTHON_VERSION = "3.11"  # bookworm's python3: what wheels of an image's Python packages are for
SITE_IN_IMAGE = f"/usr/local/lib/python{PYTHON_VERSION}/dist-packages"
WHEEL_PLATFORMS = (
    "manylinux2014_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_28_x86_64",
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")


@dataclass(frozen=True)
class ImageSpec:
    """What a sandbox image holds beyond the default: `python` requirements (as pip reads them: "numpy",
    "pandas>=2") and `debian` package names. Its tag is a hash of all of it (`image_tag(spec)`)."""

    name: str = "default"
    python: tuple[str, ...] = ()
    debian: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"image name {self.name!r}: use lowercase letters, digits, '.', '_' or '-'")
        object.__setattr__(self, "python", tuple(self.python))
        object.__setattr__(self, "debian", tuple(sorted(self.debian)))

    @property
    def repo(self) -> str:
        return IMAGE_REPO if self.name == "default" else f"{IMAGE_REPO}-{self.name}"

    def build_command(self) -> str:
        """The command that builds this image."""
        if BUILTIN.get(self.name) == self:
            return "agentkit sandbox build" + ("" if self.name == "default" else f" --image {self.name}")
        args = [f"--name {self.name}"] + [f"--python '{p}'" for p in self.python]
        return " ".join(["agentkit sandbox build", *args, *(f"--debian {d}" for d in self.debian)])


DEFAULT = ImageSpec()
DATA = ImageSpec("data", python=("numpy", "pandas", "matplotlib"))
BUILTIN = {"default": DEFAULT, "data": DATA}
_specs: dict[str, ImageSpec] = {}  # tag -> spec, for the fix of a missing image


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


def base_recipe(spec: ImageSpec = DEFAULT) -> dict[str, object]:
    return {**BASE_RECIPE, "include": ["python3", *spec.debian]}


def base_tag(spec: ImageSpec = DEFAULT) -> str:
    return f"{BASE_REPO}:{_digest(json.dumps(base_recipe(spec), sort_keys=True))}"


def dockerfile(spec: ImageSpec = DEFAULT) -> str:
    site = [
        f"COPY site/ {SITE_IN_IMAGE}/",
        f"LABEL {engine.LABEL}.python={json.dumps(','.join(spec.python))}",
    ]
    return "\n".join(
        [
            f"FROM {base_tag(spec)}",
            *(site if spec.python else []),
            f"COPY {' '.join(p.name for p in runner_files())} {RUNNER_DIR_IN_IMAGE}/",
            "ENV LANG=C.UTF-8 PYTHONUTF8=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 "
            f"HOME={WORK_DIR} PATH=/usr/local/bin:/usr/bin:/bin MPLBACKEND=Agg",
            f"WORKDIR {WORK_DIR}",
            f"USER {NOBODY}",
            f'CMD ["python3", "-I", "-u", "{RUNNER_IN_IMAGE}"]',
            f'LABEL {engine.LABEL}.image="1"',
            "",
        ]
    )


@functools.cache
def image_tag(spec: ImageSpec = DEFAULT) -> str:
    """The tag of the image this code needs for `spec`: changes whenever the spec, the recipe or the runner does."""
    tag = f"{spec.repo}:{_digest(dockerfile(spec), *spec.python, *(p.read_bytes() for p in runner_files()))}"
    _specs[tag] = spec
    return tag


def resolve(image: str | ImageSpec | None) -> str:
    """A tag from a built-in image's name ("data"), a spec, or a tag (returned as it is); None is the default."""
    if image is None:
        return image_tag()
    if isinstance(image, ImageSpec):
        return image_tag(image)
    if image in BUILTIN:
        return image_tag(BUILTIN[image])
    return image


def fix_for(tag: str) -> str:
    """The command that builds the image `tag` (for the error that says it is missing)."""
    for builtin in BUILTIN.values():
        image_tag(builtin)
    spec = _specs.get(tag) or next((b for b in BUILTIN.values() if tag.rsplit(":", 1)[0] == b.repo), None)
    if spec is not None:  # a built-in image of another version of this code: the current one is built
        return spec.build_command()
    return (
        f"{tag} is no image of this code: build it with `agentkit sandbox build --name NAME --python PKG "
        "--debian PKG` and use the tag it prints, or pass Sandbox(image=ImageSpec(...)) (docs/sandbox.md)"
    )


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


def require_image(image: str | ImageSpec | None = None) -> str:
    """The image tag, or `SandboxUnavailable` saying how to build it (checked with the engine once per process)."""
    tag = resolve(image)
    if tag not in _seen:
        if not _exists(tag):
            raise SandboxUnavailable(f"the sandbox image {tag} is not built", fix=fix_for(tag))
        _seen.add(tag)
    return tag


def ensure_image(
    progress: Progress = lambda _: None, *, rebuild: bool = False, spec: ImageSpec = DEFAULT
) -> str:
    """Build whatever layer of `spec`'s image is missing (or all, with `rebuild`); return the image tag."""
    tag = image_tag(spec)
    if _exists(tag) and not rebuild:
        progress(f"{tag} is up to date")
        return tag
    if rebuild or not _exists(base_tag(spec)):
        build_base(progress, spec)
    else:
        progress(f"{base_tag(spec)} is up to date")
    progress(f"building {tag} (runner layer{' and Python packages' if spec.python else ''})")
    with tempfile.TemporaryDirectory(prefix="agentkit-image-", dir="/var/tmp") as tmp:
        context = Path(tmp) / "context.tar"
        with tarfile.open(context, mode="w") as tar:
            files = [("Dockerfile", dockerfile(spec).encode())] + [
                (p.name, p.read_bytes()) for p in runner_files()
            ]
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
            if spec.python:
                tar.add(python_packages(spec, Path(tmp) / "site", progress), arcname="site")
        with open(context, "rb") as fileobj:
            _build(fileobj, tag, progress)
    progress(f"built {tag}")
    return tag


def _build(fileobj: object, tag: str, progress: Progress) -> None:
    import docker.errors

    try:
        for chunk in engine.client().api.build(
            fileobj=fileobj,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            network_mode="none",
            decode=True,
        ):
            if "error" in chunk:
                raise SandboxError(f"docker build of {tag} failed: {chunk['error']}")
            line = str(chunk.get("stream", "")).strip()
            if line:
                progress(line)
    except docker.errors.APIError as exc:
        raise SandboxError(f"docker build of {tag} failed: {exc}") from exc


def python_packages(spec: ImageSpec, into: Path, progress: Progress) -> Path:
    """Wheels of `spec.python` for the image's Python and platform, installed into `into` by the host's pip (from the
    package index it is configured for; nothing runs in the image to fetch them)."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(into), "--only-binary=:all:"]
    cmd += [
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--abi",
        f"cp{PYTHON_VERSION.replace('.', '')}",
    ]
    cmd += [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    progress("$ " + " ".join([*cmd, *spec.python]))
    _stream([*cmd, *spec.python], progress)
    shutil.rmtree(into / "bin", ignore_errors=True)  # console scripts with the host's interpreter in their #!
    return into


def build_base(progress: Progress, spec: ImageSpec = DEFAULT) -> str:
    """debootstrap a minbase rootfs with python3 (and the spec's Debian packages) and import it as the base image
    (needs root and debootstrap)."""
    tag = base_tag(spec)
    include = base_recipe(spec)["include"]
    assert isinstance(include, list)
    if shutil.which("debootstrap") is None:
        raise SandboxUnavailable("debootstrap is not installed", fix="bash scripts/ensure-docker.sh")
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "building the base image needs root (debootstrap)", fix=f"sudo {spec.build_command()}"
        )
    root = Path(tempfile.mkdtemp(prefix="agentkit-rootfs-", dir="/var/tmp"))
    try:
        cmd = [
            "debootstrap",
            f"--variant={BASE_RECIPE['variant']}",
            f"--include={','.join(include)}",
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
    """Every sandbox image (base and runner layers) with whether the current code uses it. Images of custom specs
    (`agentkit-sandbox-<name>` for a name that is not built in) count as used: prune never removes them."""
    current = {t for spec in [*BUILTIN.values(), *_specs.values()] for t in (image_tag(spec), base_tag(spec))}
    builtin_repos = {spec.repo for spec in BUILTIN.values()}
    out = []
    for repo in sorted({BASE_REPO, *_sandbox_repos()}):
        custom = repo != BASE_REPO and repo not in builtin_repos
        for img in engine.client().api.images(name=repo):
            for tag in img.get("RepoTags") or []:
                used = tag in current or custom
                out.append({"tag": tag, "id": img["Id"], "size": img.get("Size", 0), "current": used})
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


def _sandbox_repos() -> set[str]:
    """The default image's repository and every agentkit-sandbox-<name> one on the engine."""
    repos = {IMAGE_REPO}
    for img in engine.client().api.images(filters={"label": f"{engine.LABEL}.image=1"}):
        for tag in img.get("RepoTags") or []:
            repo = tag.rsplit(":", 1)[0]
            if repo.startswith(IMAGE_REPO):
                repos.add(repo)
    return repos
