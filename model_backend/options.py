"""Choosing a backend from the command line: the options every command that talks to a model shares, and the backend
they name. The local model (torch) is imported only when asked for."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", default=os.environ.get("AGENTKIT_PROVIDER", "deepseek"),
                   help="deepseek | openai | vllm | sglang | openrouter | ollama | local (default: $AGENTKIT_PROVIDER or deepseek)")  # fmt: skip
    p.add_argument("--model", default=os.environ.get("AGENTKIT_MODEL"), help="model id (default: the provider's)")
    p.add_argument("--base-url", default=None, help="server URL (default: the provider's, or its *_BASE_URL variable)")
    p.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="switch thinking on/off (default: the model's own default)")  # fmt: skip


def backend_from_args(args: argparse.Namespace) -> Any:
    """A backend from CLI arguments; the local model is imported only when asked for."""
    if args.provider == "local":
        from agentkit.backends.local.backend import LocalDSABackend  # noqa: PLC0415 - torch only on demand

        return LocalDSABackend(args.model) if args.model else LocalDSABackend()
    from agentkit.backends.remote import RemoteBackend  # noqa: PLC0415

    return RemoteBackend(args.provider, args.model, base_url=args.base_url)
