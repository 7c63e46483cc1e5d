"""`python -m agentkit ...` is the `agentkit` command, for environments whose scripts folder is not on PATH."""

import sys

from agentkit.app.cli import main

sys.exit(main())
