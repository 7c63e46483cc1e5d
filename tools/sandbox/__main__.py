"""`python -m agentkit.sandbox build|status|prune`: the same commands as `agentkit sandbox ...`."""

import argparse
import sys

from agentkit.sandbox.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentkit.sandbox")
    register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["sandbox", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
