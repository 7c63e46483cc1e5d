"""Typed outputs: `Agent(output_type=...)` makes `result.output` an instance of a pydantic model, a dataclass, any
type pydantic can validate, or data valid against a JSON Schema (a dict).

How the schema reaches the model: as a final-answer tool whose parameters are the schema. DeepSeek refuses JSON mode
and a forced `tool_choice` in thinking mode, but takes tools there, so a tool is the one channel that works for every
provider in both modes; the model is told to answer by calling it. A plain-text answer that parses as valid JSON is
accepted too. Anything invalid goes back to the model with the validation errors (as the tool's error result, or a
user message after a plain answer), `retries` times at most; then the run ends with `status="error"`
(`OutputValidationError`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import jsonschema
from pydantic import BaseModel, TypeAdapter, ValidationError

from agentkit.errors import ConfigurationError

FINAL_ANSWER_TOOL = "final_answer"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class OutputSpec:
    """The schema of an agent's answer, the tool that carries it, and its validation."""

    def __init__(self, output_type: Any, *, tool_name: str = FINAL_ANSWER_TOOL, retries: int = 2) -> None:
        if retries < 0:
            raise ConfigurationError("output_retries must be 0 or more")
        self.output_type = output_type
        self.tool_name = tool_name
        self.retries = retries
        self._adapter: TypeAdapter[Any] | None = None
        self._validator: jsonschema.Draft202012Validator | None = None
        if isinstance(output_type, dict):
            try:
                jsonschema.Draft202012Validator.check_schema(output_type)
            except jsonschema.SchemaError as exc:
                raise ConfigurationError(f"output_type is not a valid JSON Schema: {exc.message}") from exc
            schema = dict(output_type)  # the wrapping below must not edit the caller's schema
            self._validator = jsonschema.Draft202012Validator(output_type)
        else:
            try:
                self._adapter = TypeAdapter(output_type)
                schema = self._adapter.json_schema()
            except Exception as exc:  # noqa: BLE001 - an unsupported type is the user's configuration error
                raise ConfigurationError(f"output_type {output_type!r} cannot be described as JSON Schema: {exc}") from exc
        self.wrapped = schema.get("type") != "object"
        if self.wrapped:  # tool parameters must be an object: carry other answers in one field
            defs = schema.pop("$defs", None)
            schema = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
            if defs:
                schema["$defs"] = defs
        self.parameters = schema

    def tool_spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.tool_name,
                "description": "Give your final answer. Call this exactly once, when you are done, with the answer "
                "as its arguments; it ends the task.",
                "parameters": self.parameters,
            },
        }

    def instructions(self) -> str:
        return (
            f"When you have the final answer, call the `{self.tool_name}` tool with it as the arguments, matching "
            "its parameters exactly. Do not write the final answer as plain text."
        )

    # -- validation -------------------------------------------------------------------------------------------------

    def from_arguments(self, arguments: str) -> tuple[bool, Any]:
        """(True, value) for a valid final-answer call, else (False, the error text for the model)."""
        try:
            data = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return False, f"The arguments of `{self.tool_name}` are not valid JSON ({exc.msg}); call it again."
        if self.wrapped:
            if not isinstance(data, dict) or "result" not in data:
                return False, f"`{self.tool_name}` needs one argument, `result`: {json.dumps(self.parameters)}"
            data = data["result"]
        return self.validate(data)

    def from_text(self, text: str | None) -> tuple[bool, Any]:
        """A plain-text answer: accepted when it is JSON (bare or in a ```json fence) that validates."""
        candidates = [m.group(1) for m in _FENCE.finditer(text or "")] + [text or ""]
        for candidate in candidates:
            try:
                data = json.loads(candidate)
            except json.JSONDecodeError:
                continue
            if self.wrapped and isinstance(data, dict) and set(data) == {"result"}:
                data = data["result"]
            return self.validate(data)
        return False, (
            f"Your answer was plain text, but it must be given by calling the `{self.tool_name}` tool with "
            f"arguments matching: {json.dumps(self.parameters)}"
        )

    def validate(self, data: Any) -> tuple[bool, Any]:
        if self._adapter is not None:
            try:
                return True, self._adapter.validate_python(data)
            except ValidationError as exc:
                problems = [
                    f"'{'.'.join(str(p) for p in e['loc']) or '(answer)'}': {e['msg']}"
                    for e in exc.errors(include_url=False)
                ]
                return False, self._invalid(problems)
        assert self._validator is not None
        problems = [
            f"'{'/'.join(str(p) for p in e.absolute_path) or '(answer)'}': {e.message}"
            for e in sorted(self._validator.iter_errors(data), key=lambda e: list(e.path))
        ]
        return (False, self._invalid(problems)) if problems else (True, data)

    def _invalid(self, problems: list[str]) -> str:
        lines = "\n".join(f"- {p}" for p in problems[:10])
        return f"The final answer is invalid:\n{lines}\nFix these and call `{self.tool_name}` again."


def dump_output(value: Any) -> Any:
    """A typed output as JSON-ready data (for `RunResult.to_dict` and logs)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return value
