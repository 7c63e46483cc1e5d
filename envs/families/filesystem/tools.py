"""File-system tools: list a directory (paginated), read, write, replace text, move and delete files."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.errors import ToolCallError
from agentkit.envs.families._kit_builder import (
    STR,
    P,
    S,
    add_choosing_params,
    make_tool,
    paging_config,
    paging_params,
)
from agentkit.envs.families._kit_records import filter_tests, paginate
from agentkit.envs.runtime import ToolContext
from agentkit.envs.spec import ToolSpec


def _norm(path: str) -> str:
    if not path.startswith("/"):
        raise ToolCallError(f"paths must be absolute (start with '/'), got {path!r}")
    return "/" + "/".join(p for p in path.split("/") if p)


def _file(ctx: ToolContext, path: str) -> dict[str, Any]:
    rec = ctx.ws.get(ctx.c("files"), _norm(path))
    if rec is None:
        raise ToolCallError(f"no such file: {path}; list the directory to see what is there")
    return rec


def op_list_dir(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """Immediate children of a directory: files with size and owner, and sub-directories; with a filter, only the
    files that pass every filter (a directory has no owner or size to match), counted before paging."""
    d = _norm(args["path"]).rstrip("/") + "/"
    f = ctx.f
    entries: dict[str, dict[str, Any]] = {}
    for path, rec in ctx.ws.records(ctx.c("files")):
        if not path.startswith(d):
            continue
        rest = path[len(d):]
        if "/" in rest:
            name = rest.split("/", 1)[0]
            entries.setdefault(name, {"name": name, "type": "dir"})
        else:
            entries[rest] = {"name": rest, "type": "file", "size": rec[f("size")], "owner": rec[f("owner")]}
    if not entries:
        raise ToolCallError(f"no such directory or empty: {args['path']}")
    listed = [entries[k] for k in sorted(entries)]
    tests = filter_tests(ctx.config, args)
    if tests:
        listed = [e for e in listed if e["type"] == "file" and all(t(e) for t in tests)]
    return paginate(ctx.config, listed, args)


def op_read(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"path": _norm(args["path"]), "content": _file(ctx, args["path"])[ctx.f("content")]}


def op_write(ctx: ToolContext, args: dict[str, Any]) -> Any:
    path, f, F = _norm(args["path"]), ctx.f, ctx.c("files")
    content = args["content"]
    old = ctx.ws.get(F, path)
    rec = {f("path"): path, f("size"): len(content.encode()), f("owner"): old[f("owner")] if old else "deploy",
           f("content"): content}
    ctx.ws.writes.setdefault(F, {})[path] = rec
    return {"ok": True, "path": path, "bytes": rec[f("size")]}


def op_replace(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """Replace exactly one occurrence of `old` with `new` in a file (like an editor's search-and-replace)."""
    path, f = _norm(args["path"]), ctx.f
    text = _file(ctx, path)[f("content")]
    n = text.count(args["old"])
    if n != 1:
        raise ToolCallError(f"'old' must occur exactly once in {path}; it occurs {n} times")
    new = text.replace(args["old"], args["new"])
    ctx.ws.update(ctx.c("files"), path, {f("content"): new, f("size"): len(new.encode())})
    return {"ok": True, "path": path}


def op_move(ctx: ToolContext, args: dict[str, Any]) -> Any:
    src, dst, F, f = _norm(args["source"]), _norm(args["destination"]), ctx.c("files"), ctx.f
    rec = _file(ctx, src)
    if dst.endswith("/") or ctx.ws.get(F, dst) is None and any(
            p.startswith(dst + "/") for p, _ in ctx.ws.records(F)):
        dst = dst.rstrip("/") + "/" + src.rsplit("/", 1)[1]
    if ctx.ws.get(F, dst) is not None:
        raise ToolCallError(f"destination exists: {dst}")
    ctx.ws.delete(F, src)
    ctx.ws.writes.setdefault(F, {})[dst] = {**rec, f("path"): dst}
    return {"ok": True, "from": src, "to": dst}


def op_delete(ctx: ToolContext, args: dict[str, Any]) -> Any:
    path = _norm(args["path"])
    _file(ctx, path)
    ctx.ws.delete(ctx.c("files"), path)
    return {"ok": True, "deleted": path}


OPS = {"list_dir": op_list_dir, "read": op_read, "write": op_write, "replace": op_replace, "move": op_move,
       "delete": op_delete}


LIST_FILTERS = [
    (P("owner", ("owner", "owned_by", "user"), STR, False, "Only files owned by this user (case-insensitive)."),
     "owner", "eq"),
    (P("larger_than", ("larger_than", "size_over", "larger_than_bytes"), S(type="integer", minimum=0), False,
       "Only files larger than this many bytes (strictly greater)."), "size", "gt"),
    (P("suffix", ("suffix", "extension", "name_suffix"), STR, False,
       "Only files whose name ends with this, e.g. '.log'."), "name", "suffix"),
]
"""The filters of `list_dir` (param, entry key, mode): the tool picks a user's files, the files over a size, the files
of a type, which a task would otherwise have the agent pick out of a whole listing, and a small model gets wrong."""


def build_tools(rng: random.Random, difficulty: int, bindings: dict[str, Any]) -> dict[str, ToolSpec]:
    path = P("path", ("path", "file_path", "filename"), STR, doc="Absolute path.")
    paging = paging_config(rng, difficulty, "entry")
    list_dir = make_tool(
        rng, impl="filesystem.list_dir", names=("list_dir", "ls", "list_directory"),
        descriptions=("List the files (with size in bytes and owner) and sub-directories of a directory. The "
                      "optional filters (owner, larger than a size in bytes, name suffix) combine with AND and "
                      "return only the matching files.",),
        params=[P("path", ("path", "dir", "directory"), STR)] + paging_params(paging["paging"], paging["page_size"]),
        config=paging,
    )
    add_choosing_params(list_dir, bounds=LIST_FILTERS, sums=("size",))  # names from the tool's own seed: `rng` draws as before
    tools = {
        "list_dir": list_dir,
        "read_file": make_tool(rng, impl="filesystem.read", names=("read_file", "cat", "get_file"),
                               descriptions=("Read a text file.",), params=[path]),
        "write_file": make_tool(rng, impl="filesystem.write", names=("write_file", "put_file", "save_file"),
                                writes=True, descriptions=("Create or overwrite a file with the given content.",),
                                params=[path, P("content", ("content", "text", "data"), {"type": "string"})]),
        "move_file": make_tool(
            rng, impl="filesystem.move", names=("move_file", "mv", "rename_file"), writes=True,
            descriptions=("Move or rename a file; a destination ending in '/' keeps the file name.",),
            params=[P("source", ("source", "src", "from_path"), STR),
                    P("destination", ("destination", "dst", "to_path"), STR)]),
        "delete_file": make_tool(rng, impl="filesystem.delete", names=("delete_file", "rm", "remove_file"),
                                 writes=True, descriptions=("Delete a file.",), params=[path]),
    }
    if rng.random() < 0.6:
        tools["replace_in_file"] = make_tool(
            rng, impl="filesystem.replace", names=("replace_in_file", "edit_file", "str_replace"), writes=True,
            descriptions=("Replace one exact occurrence of a string in a file.",),
            params=[path, P("old", ("old", "old_str", "find"), STR), P("new", ("new", "new_str", "replace_with"),
                                                                        {"type": "string"})])
    return tools
