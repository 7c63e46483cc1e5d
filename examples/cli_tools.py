"""Tools for `agentkit run --tool examples.cli_tools:word_count` (any importable typed function works)."""


def word_count(text: str) -> int:
    """Count the words in a text.

    Args:
        text: the text to count.
    """
    return len(text.split())
