"""Test doubles that speak real wire formats: a scripted DeepSeek-wire server and an oracle that replays reference
solutions through it. Tests, benchmarks and the demo use them; the runtime never imports this package (an
import-linter contract checks it)."""
