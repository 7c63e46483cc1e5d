"""`agentkit serve`: put any backend (the local DSA model or a remote provider) behind an OpenAI-compatible server.

    agentkit serve --provider local --checkpoint PATH --port 8000
    agentkit serve --provider local --random-init            # an untrained model: the plumbing, no quality
    agentkit serve --provider deepseek --model deepseek-v4-flash  # re-expose a remote provider through agentkit

Registered lazily by agentkit's CLI; nothing here imports torch until the local provider is chosen.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from agentkit.backends.options import backend_from_args
from agentkit.errors import ConfigurationError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible HTTP API (SSE streaming, tools, reasoning_content)",
        description="Serve a backend at /v1/chat/completions and /v1/models in DeepSeek's wire format.",
    )
    p.add_argument("--provider", default="local",
                   help="local | deepseek | openai | vllm | sglang | openrouter | ollama (default: local)")  # fmt: skip
    p.add_argument("--checkpoint", default=None,
                   help="local: checkpoint directory or .safetensors file (default: the shipped checkpoint)")  # fmt: skip
    p.add_argument("--random-init", action="store_true",
                   help="local: serve a randomly initialised model (tests the plumbing; answers are noise)")  # fmt: skip
    p.add_argument("--attention", choices=["sparse", "dense"], default="sparse", help="local: attention path")
    # None: what the checkpoint's manifest says the model was trained with (the shipped model thinks, with 4 beams);
    # a default of "off" served a model that never answered clients that do not send the switch.
    p.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="local: think when a request does not say (default: as the model was trained)")  # fmt: skip
    p.add_argument("--beams", type=int, default=None, help="local: beam width (default: as the model was trained)")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="local: tokens per reply when a request does not say (default: as the model was trained)")  # fmt: skip
    p.add_argument("--max-batch", type=int, default=8, help="local: sequences decoded together")
    p.add_argument(
        "--context-len", type=int, default=4096, help="local: tokens per sequence (prompt + output)"
    )
    p.add_argument("--threads", type=int, default=1, help="local: torch threads of the model worker")
    p.add_argument("--model", default=None, help="remote: model id (default: the provider's)")
    p.add_argument("--base-url", default=None, help="remote: upstream URL (default: the provider's)")
    p.add_argument(
        "--served-model-name", default=None, help="the model id clients ask for (default: the backend's)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("AGENTKIT_SERVE_API_KEY"),
                   help="require 'Authorization: Bearer KEY' (default: $AGENTKIT_SERVE_API_KEY, or no key)")  # fmt: skip
    p.add_argument("--max-concurrent", type=int, default=8, help="requests generating at once")
    p.add_argument(
        "--max-queue", type=int, default=32, help="requests waiting beyond those; more get HTTP 429"
    )
    p.add_argument(
        "--graceful-timeout", type=int, default=10, help="seconds in-flight requests get at shutdown"
    )
    p.set_defaults(func=cmd_serve)


def make_backend(args: argparse.Namespace) -> Any:
    if args.provider != "local":
        return backend_from_args(args)
    from agentkit.backends.local.backend import LocalDSABackend, init_random_checkpoint  # noqa: PLC0415 - torch on demand

    checkpoint = args.checkpoint
    if args.random_init:
        if checkpoint:
            raise ConfigurationError("--random-init and --checkpoint exclude each other")
        checkpoint = init_random_checkpoint(tempfile.mkdtemp(prefix="agentkit-random-"))
    return LocalDSABackend(
        checkpoint,
        mode=args.attention,
        thinking=args.thinking,
        beams=args.beams,
        max_tokens=args.max_tokens,
        max_batch=args.max_batch,
        context_len=args.context_len,
        threads=args.threads,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from agentkit.backends.server import ChatServer, ServerLimits  # noqa: PLC0415

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"warning: serving on {args.host} without an API key: anyone who can reach it can use the model",
              file=sys.stderr)  # fmt: skip
    backend = make_backend(args)
    server = ChatServer(
        backend,
        host=args.host,
        port=args.port,
        model_id=args.served_model_name,
        api_key=args.api_key,
        limits=ServerLimits(args.max_concurrent, args.max_queue),
        graceful_timeout=args.graceful_timeout,
        log_level="info",
    )
    print(
        f"serving {server.app.model_id!r} at http://{args.host}:{args.port}/v1 (Ctrl-C to stop)",
        file=sys.stderr,
    )
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown: that is a normal stop
        pass
    return 0
