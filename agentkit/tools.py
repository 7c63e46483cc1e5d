"""Tools: typed Python functions (or name + JSON Schema + callable) that a model can call.

The contract with the model is forgiving by design: malformed JSON, unknown parameters, wrong types, timeouts and
exceptions never raise into the agent loop. Each becomes a `ToolOutput(is_error=True)` whose text says exactly what was
wrong, so the model can fix its call on the next turn. Results are capped with a visible marker, because a 5 MB tool
result silently truncated (or not truncated) ruins the context either way.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, get_type_hints

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from agentkit._docstrings import parse_docstring
from agentkit.errors import ToolDefinitionError, ToolError

DEFAULT_MAX_OUTPUT_CHARS = 20_000
DEFAULT_TOOL_TIMEOUT = 60.0
EMPTY_RESULT = "(the tool returned an empty result)"

log = logging.getLogger("agentkit.tools")


@dataclass(frozen=True)
class ToolOutput:
    """What a tool call gives back to the model."""

    content: str
    is_error: bool = False


# --------------------------------------------------------------------------------------------------------------------
# Per-run context: lets a tool keep resources (a sandbox, a session) for exactly one agent run.


@dataclass
class RunContext:
    """State shared by the tool calls of one agent run; cleanups run when the run ends, however it ends."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    resources: dict[str, Any] = field(default_factory=dict)
    _cleanups: list[Callable[[], Awaitable[Any]]] = field(default_factory=list, repr=False)

    def add_cleanup(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Register an async callable to run (last in, first out) when the run ends."""
        self._cleanups.append(fn)

    async def aclose(self) -> list[BaseException]:
        """Run every cleanup even if some fail or we are being cancelled; return the errors."""
        errors: list[BaseException] = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                await asyncio.shield(fn())
            except BaseException as exc:  # noqa: BLE001 - a failing cleanup must not skip the others
                errors.append(exc)
        self.resources.clear()
        return errors


_DEFAULT_CONTEXT = RunContext(run_id="default")
_current_run: contextvars.ContextVar[RunContext] = contextvars.ContextVar(
    "agentkit_run", default=_DEFAULT_CONTEXT
)


def current_run() -> RunContext:
    """The context of the agent run executing this tool call (a process-wide default outside any run)."""
    return _current_run.get()


def set_current_run(ctx: RunContext) -> contextvars.Token[RunContext]:
    """Enter `ctx` for the current task; the agent loop calls this, tests may too."""
    return _current_run.set(ctx)


def reset_current_run(token: contextvars.Token[RunContext]) -> None:
    _current_run.reset(token)


# --------------------------------------------------------------------------------------------------------------------
# Rendering results


def render_result(value: Any) -> str:
    """Turn a tool's return value into text: strings as they are, models and containers as compact JSON. Keys that
    JSON cannot take (tuples, objects) become their text, a structure that contains itself shows `"<circular>"` where
    it repeats, other objects their `str()`. Raises only when an object's own `__str__`/`__repr__` raises."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(_plain(value, set()), ensure_ascii=False)


_SCALARS = (str, int, float, bool, type(None))


def _plain(obj: Any, seen: set[int]) -> Any:
    """`obj` as JSON-ready data (see `render_result`)."""
    if isinstance(obj, _SCALARS):
        return obj
    if id(obj) in seen:
        return "<circular>"
    seen = seen | {id(obj)}
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, seen)
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else _key(k)): _plain(v, seen) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_plain(v, seen) for v in obj]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    return str(obj)


def _key(key: Any) -> str:
    if isinstance(key, int | float | bool) or key is None:
        return json.dumps(key)
    return str(key)


def safe_str(obj: object) -> str:
    """`str(obj)`, or a placeholder naming its type when its `__str__` raises."""
    try:
        return str(obj)
    except Exception:  # noqa: BLE001 - an unprintable object must not crash the run
        return f"<unprintable {type(obj).__name__}>"


def cap_text(text: str, limit: int) -> str:
    """Keep the head and a little tail of `text`, with an explicit marker saying how much was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    tail = min(limit // 5, 2_000)
    head = limit - tail
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... truncated {cut} of {len(text)} characters ...]\n{text[len(text) - tail :]}"


def describe_exception(exc: BaseException) -> str:
    """`Type: message` plus the innermost frame: enough for a model to act, without a traceback's noise."""
    text = safe_str(exc)
    msg = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        msg += f" (at {f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name})"
    return msg


# --------------------------------------------------------------------------------------------------------------------
# Tool


class Tool:
    """A callable the model may invoke: name, description, JSON Schema of its parameters, and validation.

    Build one with `@tool` from a typed function, or with `Tool.from_schema` from a JSON Schema (generated
    environments, MCP servers). `invoke` never raises for anything the model did wrong.
    """

    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any],
        fn: Callable[..., Any],
        *,
        timeout: float | None = DEFAULT_TOOL_TIMEOUT,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        args_model: type[BaseModel] | None = None,
        secret_args: Iterable[str] = (),
        requires_approval: bool = False,
    ) -> None:
        if not name or not all(c.isalnum() or c in "_-" for c in name) or len(name) > 64:
            raise ToolDefinitionError(
                f"tool name {name!r} is invalid: use 1-64 letters, digits, '_' or '-' (the OpenAI function-name rule)"
            )
        if parameters.get("type", "object") != "object":
            raise ToolDefinitionError(f"tool {name!r}: the parameters schema must describe a JSON object")
        self.name = name
        self.description = description
        self.parameters = parameters
        self.fn = fn
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self._args_model = args_model
        self.secret_args = frozenset(secret_args) | _secret_fields(args_model)  # never in traces or logs
        self.requires_approval = requires_approval
        self._validator = _validator_for(name, parameters)
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        schema: dict[str, Any],
        fn: Callable[..., Any],
        *,
        timeout: float | None = DEFAULT_TOOL_TIMEOUT,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        **options: Any,
    ) -> Tool:
        """A tool whose arguments are validated against `schema` (JSON Schema) and passed as `fn(**arguments)`;
        `options`: `secret_args`, `requires_approval`."""
        schema = {"type": "object", "properties": {}, **schema}
        return cls(name, description, schema, fn, timeout=timeout, max_output_chars=max_output_chars, **options)

    def spec(self) -> dict[str, Any]:
        """The OpenAI-compatible function-tool definition."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"

    async def __call__(self, **kwargs: Any) -> ToolOutput:
        return await self.invoke(kwargs)

    # -- invocation ---------------------------------------------------------------------------------------------------

    def parse_arguments(self, arguments: str | dict[str, Any] | None) -> dict[str, Any] | str:
        """Validated keyword arguments, or the error text for the model."""
        if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            data: Any = {}
        elif isinstance(arguments, str):
            try:
                data = json.loads(arguments)
            except json.JSONDecodeError as exc:
                shown = arguments if len(arguments) <= 300 else arguments[:300] + "..."
                return (
                    f"Arguments for tool '{self.name}' are not valid JSON ({exc.msg} at position {exc.pos}): {shown}\n"
                    f"Call it again with a JSON object matching its parameters: {self.signature()}"
                )
        else:
            data = arguments
        if not isinstance(data, dict):
            return (
                f"Arguments for tool '{self.name}' must be a JSON object, got {type(data).__name__}. "
                f"Parameters: {self.signature()}"
            )
        if self._args_model is not None:
            try:
                model = self._args_model.model_validate(data)
            except ValidationError as exc:
                return self._invalid(_pydantic_problems(exc))
            return {k: getattr(model, k) for k in type(model).model_fields}
        problems = [
            _jsonschema_problem(e) for e in sorted(self._validator.iter_errors(data), key=lambda e: e.path)
        ]
        if problems:
            return self._invalid(problems)
        return data

    def _invalid(self, problems: list[str]) -> str:
        lines = "\n".join(f"- {p}" for p in problems[:10])
        more = f"\n- ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        return f"Invalid arguments for tool '{self.name}':\n{lines}{more}\nParameters: {self.signature()}"

    def signature(self) -> str:
        """A compact, model-readable signature: `name(a: string, b?: integer = 3)`."""
        props = self.parameters.get("properties", {})
        required = set(self.parameters.get("required", []))
        parts = []
        for key, sub in props.items():
            typ = _schema_type_name(sub, self.parameters)
            opt = "" if key in required else "?"
            default = f" = {json.dumps(sub['default'])}" if isinstance(sub, dict) and "default" in sub else ""
            parts.append(f"{key}{opt}: {typ}{default}")
        return f"{self.name}({', '.join(parts)})"

    async def invoke(self, arguments: str | dict[str, Any] | None) -> ToolOutput:
        """Validate, call with the timeout, render and cap. Never raises for the model's mistakes or the tool's."""
        parsed = self.parse_arguments(arguments)
        if isinstance(parsed, str):
            return ToolOutput(parsed, is_error=True)
        try:
            async with asyncio.timeout(self.timeout):
                if self._is_async:
                    value = await self.fn(**parsed)
                else:
                    value = await self._run_in_thread(parsed)
                if inspect.isawaitable(value):
                    value = await value
        except TimeoutError:
            return ToolOutput(
                f"Tool '{self.name}' timed out after {self.timeout:g} s and was stopped. "
                "Try a smaller input or a cheaper approach.",
                is_error=True,
            )
        except ToolError as exc:
            return ToolOutput(cap_text(safe_str(exc), self.max_output_chars), is_error=True)
        except Exception as exc:  # noqa: BLE001 - any tool failure becomes a result the model can read
            return ToolOutput(
                cap_text(f"Tool '{self.name}' failed: {describe_exception(exc)}", self.max_output_chars),
                is_error=True,
            )
        try:
            text = render_result(value)
        except Exception as exc:  # noqa: BLE001 - an unprintable result is the tool's error, not the run's
            return ToolOutput(
                f"Tool '{self.name}' returned a {type(value).__name__} that cannot be shown as text "
                f"({describe_exception(exc)}); return a string, numbers, lists or dicts.",
                is_error=True,
            )
        return ToolOutput(cap_text(text, self.max_output_chars) if text else EMPTY_RESULT)

    async def _run_in_thread(self, arguments: dict[str, Any]) -> Any:
        """Run the sync function in a daemon thread of its own. Python cannot stop a thread: when the call is
        cancelled (timeout, deadline, Ctrl-C) the thread is abandoned with a warning and, being a daemon, holds
        neither the event loop's shutdown nor the process exit (a thread pool's worker would hold both)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        ctx = contextvars.copy_context()

        def settle(ok: bool, value: Any) -> None:
            if done.done():
                return
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

        def target() -> None:
            try:
                outcome: tuple[bool, Any] = (True, ctx.run(functools.partial(self.fn, **arguments)))
            except BaseException as exc:  # noqa: BLE001 - SystemExit in a tool is the tool's failure
                if not isinstance(exc, Exception):
                    exc = RuntimeError(f"the tool raised {type(exc).__name__}")
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(settle, *outcome)
            except RuntimeError:
                pass  # the run (and its loop) ended while this abandoned call was still running

        thread = threading.Thread(target=target, name=f"agentkit-tool-{self.name}", daemon=True)
        thread.start()
        try:
            return await done
        except asyncio.CancelledError:
            if thread.is_alive():
                log.warning(
                    "tool %r is still running in an abandoned thread (Python cannot stop a thread); its result will "
                    "be dropped. Make it async, or run slow work in a sandbox, to have it stopped.",
                    self.name,
                )
            raise


_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


def _validator_for(name: str, schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A checked validator per distinct schema. Checking a schema against the metaschema costs milliseconds, and
    an eval builds the same tools for every episode, so each distinct schema is checked once per process."""
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _VALIDATORS.get(key)
    if validator is None:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ToolDefinitionError(f"tool {name!r}: invalid JSON Schema: {exc.message}") from exc
        if len(_VALIDATORS) > 4096:
            _VALIDATORS.clear()
        validator = _VALIDATORS[key] = jsonschema.Draft202012Validator(schema)
    return validator


def _schema_type_name(sub: Any, root: dict[str, Any]) -> str:
    if not isinstance(sub, dict):
        return "any"
    if "$ref" in sub:
        return str(sub["$ref"]).rsplit("/", 1)[-1]
    if "enum" in sub:
        return "|".join(json.dumps(v) for v in sub["enum"])
    if "const" in sub:
        return json.dumps(sub["const"])
    for key in ("anyOf", "oneOf"):
        if key in sub:
            return " | ".join(_schema_type_name(s, root) for s in sub[key])
    typ = sub.get("type", "any")
    if typ == "array":
        return f"array[{_schema_type_name(sub.get('items', {}), root)}]"
    return "|".join(typ) if isinstance(typ, list) else str(typ)


def _jsonschema_problem(err: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        return err.message.replace("is a required property", "is required but missing")
    if err.validator == "additionalProperties":
        return f"{err.message} (remove it)"
    return f"'{where}': {err.message}" if where else err.message


def _pydantic_problems(exc: ValidationError) -> list[str]:
    out = []
    for e in exc.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "missing":
            out.append(f"'{where}' is required but missing")
        elif e["type"] == "extra_forbidden":
            out.append(f"'{where}' is not a parameter of this tool (remove it)")
        else:
            got = json.dumps(e.get("input"), default=str)
            got = got if len(got) <= 80 else got[:80] + "..."
            out.append(f"'{where}': {e['msg']} (got {got})")
    return out


# --------------------------------------------------------------------------------------------------------------------
# @tool


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = DEFAULT_TOOL_TIMEOUT,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    secret_args: Iterable[str] = (),
    requires_approval: bool = False,
) -> Any:
    """Turn a typed function (sync or async) into a `Tool`.

    `secret_args` (and parameters typed `SecretStr`) never show in traces or run logs; `requires_approval=True`
    makes the agent ask before each call (see `Agent(approve=...)`).

    The schema comes from the type hints (str, int, float, bool, Optional, Literal, Enum, list, dict, pydantic models,
    defaults, `Annotated[..., Field(...)]`); the description is the docstring's first paragraph and parameter docs come
    from its Google, NumPy or reST sections. Use as `@tool` or `@tool(name=..., timeout=...)`.
    """

    def build(f: Callable[..., Any]) -> Tool:
        doc = parse_docstring(inspect.getdoc(f) or "")
        args_model = _args_model_for(f, doc.params)
        schema = _clean_schema(args_model.model_json_schema())
        return Tool(
            name or f.__name__,
            description if description is not None else doc.summary,
            schema,
            f,
            timeout=timeout,
            max_output_chars=max_output_chars,
            args_model=args_model,
            secret_args=secret_args,
            requires_approval=requires_approval,
        )

    return build(fn) if fn is not None else build


def _secret_fields(model: type[BaseModel] | None) -> frozenset[str]:
    if model is None:
        return frozenset()
    return frozenset(k for k, f in model.model_fields.items() if "Secret" in str(f.annotation))


def _args_model_for(f: Callable[..., Any], param_docs: dict[str, str]) -> type[BaseModel]:
    try:
        hints = get_type_hints(f, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - unresolved forward refs deserve a clear message
        raise ToolDefinitionError(f"cannot resolve the type hints of {f.__name__}: {exc}") from exc
    fields: dict[str, Any] = {}
    for pname, p in inspect.signature(f).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{f.__name__}: *args/**kwargs cannot be described to a model; declare each parameter explicitly"
            )
        if pname in ("self", "cls"):
            continue
        ann = hints.get(pname, Any)
        default = p.default if p.default is not p.empty else ...
        info = default if isinstance(default, FieldInfo) else Field(default=default)
        if info.description is None and pname in param_docs:
            ann = Annotated[ann, Field(description=param_docs[pname])]
        fields[pname] = (ann, info)
    try:
        return create_model(
            f"{f.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
    except Exception as exc:  # noqa: BLE001
        raise ToolDefinitionError(f"{f.__name__}: cannot build a schema from its signature: {exc}") from exc


def _clean_schema(schema: Any, *, in_properties: bool = False) -> Any:
    """Drop pydantic's auto-generated `title`s: they cost tokens and tell the model nothing."""
    if isinstance(schema, dict):
        out = {}
        for k, v in schema.items():
            if not in_properties and k == "title" and isinstance(v, str):
                continue
            out[k] = _clean_schema(v, in_properties=(k in ("properties", "$defs") and not in_properties))
        return out
    if isinstance(schema, list):
        return [_clean_schema(v) for v in schema]
    return schema


# --------------------------------------------------------------------------------------------------------------------
# A set of tools with unique names


class Toolset:
    """Tools by name; dispatches a model's call, including calls to tools that do not exist."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            t = t if isinstance(t, Tool) else tool(t)
            if t.name in self._tools:
                raise ToolDefinitionError(f"two tools are named {t.name!r}; tool names must be unique")
            self._tools[t.name] = t

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self._tools.values()]

    async def call(self, name: str, arguments: str | dict[str, Any] | None) -> ToolOutput:
        t = self._tools.get(name)
        if t is None:
            known = ", ".join(sorted(self._tools)) or "(none)"
            return ToolOutput(f"Unknown tool '{name}'. Available tools: {known}.", is_error=True)
        return await t.invoke(arguments)
