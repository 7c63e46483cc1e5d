"""Index a folder, search it, and see what a model would get back from the `search` tool. Offline, no model.

    python examples/search_quickstart.py                   # a small demo folder written to a temp dir
    python examples/search_quickstart.py path/to/docs "query words"
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from agentkit.search import SearchIndex, search_tool

DEMO = {
    "guide/install.md": "# Install\n\nRun `pip install agentkit`.\n\n## From source\n\nClone the repository, then `make`.\n",
    "guide/retries.md": "# Retries\n\nFailed requests are retried with exponential backoff, honouring Retry-After.\n",
    "notes.txt": "The sandbox runs model-written code in a container with no network.\n",
}


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1:
            folder, query = Path(sys.argv[1]), " ".join(sys.argv[2:]) or "install"
        else:
            folder, query = Path(tmp) / "docs", "retry backoff"
            for rel, text in DEMO.items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_text(text)

        with SearchIndex(Path(tmp) / "index.sqlite") as index:
            print(index.ingest(folder).summary())
            print(index.ingest(folder).summary(), "(second run: nothing changed, nothing re-read)")

            for hit in await index.search(query, k=3):
                print(f"{hit.score:6.2f}  {hit.title}  [{hit.citation}]  {hit.snippet!r}")

            tool = search_tool(index)
            output = await tool.invoke({"query": query, "k": 2})
            print("\nWhat the model sees:\n" + output.content)


asyncio.run(main())
