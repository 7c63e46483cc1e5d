"""Chunking: headings, paragraphs, code, records; positions point at the right lines."""

from __future__ import annotations

import textwrap

from agentkit.search.chunking import (
    JsonFields,
    chunk_html,
    chunk_json,
    chunk_jsonl,
    chunk_markdown,
    chunk_python,
    chunk_text,
    identifier_words,
)


def test_markdown_sections_follow_headings_but_not_inside_code_fences() -> None:
    text = textwrap.dedent(
        """\
        intro line

        # Guide
        text of guide
        ## Install
        ```bash
        # this is a shell comment, not a heading
        pip install x
        ```
        ### Extras
        extras text
        # Other
        other text
        """
    )
    chunks = chunk_markdown(text, "guide.md")
    assert [(c.title, c.line) for c in chunks] == [
        ("guide.md", 1),
        ("Guide", 3),
        ("Guide › Install", 5),
        ("Guide › Install › Extras", 10),
        ("Other", 12),
    ]
    assert "# this is a shell comment" in chunks[2].text


def test_long_text_is_packed_by_paragraph_and_split_at_sentences() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(10)]
    chunks = chunk_text("\n\n".join(paragraphs), "t", max_chars=400)
    assert all(len(c.text) <= 400 for c in chunks)
    assert [c.line for c in chunks] == [1, 5, 9, 13, 17]  # each starts on its first paragraph's line
    assert "".join(c.text for c in chunks).count("Paragraph") == 10

    sentence = "This sentence is about thirty chars. "
    [para] = [sentence * 40]
    pieces = chunk_text(para, "t", max_chars=300)
    assert len(pieces) > 1 and all(len(p.text) <= 300 for p in pieces)
    assert all(p.text.endswith(".") for p in pieces[:-1])  # cut at sentence ends
    unbroken = chunk_text("x" * 1000, "t", max_chars=300)
    assert [len(c.text) for c in unbroken] == [300, 300, 300, 100]


def test_html_text_entities_and_headings() -> None:
    page = (
        "<html><head><title>T &amp; U</title></head><body><h2>Part&nbsp;A</h2><p>one<br>two</p>"
        "<pre>  keep   spacing</pre><h3>B</h3><div>fish &lt;chips&gt;</div></body></html>"
    )
    chunks = chunk_html(page, "page.html")
    assert [c.title for c in chunks] == ["Part A", "Part A › B"]  # &nbsp; is a space
    assert "one\ntwo" in chunks[0].text and "  keep   spacing" in chunks[0].text
    assert chunks[1].text.endswith("fish <chips>")


def test_python_definitions_and_long_classes() -> None:
    methods = "\n".join(
        f"    def method_{i}(self):\n        '''Method {i} does {i} things.'''\n        return {i}\n" for i in range(30)
    )
    source = f'"""Mod doc."""\nX = 1\n\n\n@decorator\ndef f():\n    pass\n\n\nclass Big:\n    """Big class."""\n\n{methods}'
    chunks = chunk_python(source, "pkg.mod", max_chars=400)
    titles = [c.title for c in chunks]
    assert titles[:4] == ["pkg.mod", "pkg.mod", "pkg.mod.f", "pkg.mod.Big"]
    assert titles[4:] == [f"pkg.mod.Big.method_{i}" for i in range(30)]
    assert chunks[2].line == 5 and chunks[2].text.startswith("@decorator")  # decorators belong to the def
    assert chunks[4].line == 13


def test_python_that_does_not_parse_is_text() -> None:
    [chunk] = chunk_python("def broken(:\n    pass", "m")
    assert (chunk.title, chunk.text) == ("m", "def broken(:\n    pass")


def test_jsonl_and_json_records() -> None:
    jsonl = '{"name": "a", "text": "alpha"}\n\nnot json\n{"text": "no title"}\n[1, 2]\n"just a string"\n'
    chunks = chunk_jsonl(jsonl, "f.jsonl", JsonFields())
    assert [(c.title, c.text, c.line) for c in chunks] == [
        ("a", "alpha", 1),
        ("f.jsonl #4", "no title", 4),
        ("f.jsonl #5", "[1, 2]", 5),
        ("f.jsonl #6", "just a string", 6),
    ]
    records = chunk_json('[{"title": "x", "n": 3, "body": "b"}, {"title": "y"}]', "f.json", JsonFields())
    assert [(c.title, c.text, c.line) for c in records] == [("x", "b", 1)]  # a record with no text is skipped
    chosen = chunk_json('{"title": "x", "n": 3, "tags": ["a"]}', "f.json", JsonFields(text=("n", "tags")))
    assert chosen[0].text == '3\n\n["a"]'
    assert chunk_json("{not json", "f.json", JsonFields())[0].text == "{not json"


def test_identifier_words() -> None:
    assert identifier_words("concurrent.futures.ThreadPoolExecutor") == "Thread Pool Executor"
    assert identifier_words("HTTPServer.getURL") == "HTTP Server get URL"
    assert identifier_words("json.dumps › Notes") == ""
