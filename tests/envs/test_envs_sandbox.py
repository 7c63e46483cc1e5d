"""The data-analysis family against the real Docker sandbox: the reference code, run by `SandboxPython` in a
container (never in-process), must reproduce the gold values the generator computed directly in Python."""

from __future__ import annotations

import pytest

from agentkit.envs.generator import generate_records
from agentkit.envs.runtime import PYTHON_IMPL, Episode, SandboxPython

SETUP = "bash scripts/ensure-docker.sh && agentkit sandbox build"


@pytest.mark.docker
async def test_dataset_references_pass_in_the_real_sandbox() -> None:
    from agentkit.sandbox import Sandbox, SandboxLimits, SandboxUnavailable, engine, image

    try:
        engine.client()
        image.require_image()
    except SandboxUnavailable as exc:
        pytest.fail(f"the Docker sandbox is not set up ({exc}). Run: {SETUP}", pytrace=False)
    recs = generate_records(4, seed=11, fams=["dataset"], difficulties=[1, 3])
    assert len(recs) == 4
    for rec in recs:
        async with Sandbox(SandboxLimits(timeout=20)) as sb:
            ep = Episode(rec, python=SandboxPython(sb))
            for call in rec.solution.calls:
                res = await ep.acall(call.tool, call.arguments)
                assert not res.is_error, res.content
            assert ep.score(rec.solution.answer).passed
            # The file really is in the container, and code errors come back as text for the model.
            py = next(t.name for t in rec.environment.tools if t.impl == PYTHON_IMPL)
            res = await ep.acall(py, {"code": "import os; print(sorted(os.listdir('.')))\n1/0"})
            assert next(iter(rec.environment.files)) in res.content and "ZeroDivisionError" in res.content
