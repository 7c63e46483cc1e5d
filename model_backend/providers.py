"""Provider profiles: everything that differs between OpenAI-compatible servers, as data.

A profile says where the server is, which environment variable holds the key, what reasoning is called on the wire in
each direction, how thinking is switched on, which earlier reasoning must be sent back (`WirePolicy`), and which
request parameters the server refuses or ignores while thinking. Per-model rules (DeepSeek V4 vs V3.2 weights) are
looked up by exact id, then by glob pattern; a user's own `model_rules` are looked up first, so they override any id,
built-in ones included. Users extend the table instead of patching code.

DeepSeek's API (since 2026-04-24) serves V4: `deepseek-v4-flash` (the default here) and `deepseek-v4-pro`. The legacy
ids `deepseek-chat` and `deepseek-reasoner` were routed to `deepseek-v4-flash` (non-thinking and thinking mode) and
retired on 2026-07-24; they keep what they were routed to (the V4 reasoning rule, their thinking default) and warn
once, because a transcript replayed to them is judged by V4's rule. The V3.2 rule stays for V3.2 weights served by
vLLM or SGLang.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from enum import StrEnum

from agentkit.errors import ConfigurationError
from agentkit.messages import DEEPSEEK_V4, DEEPSEEK_V32, OPENAI, ReasoningReplay, WirePolicy


class ThinkingSwitch(StrEnum):
    """How a server is asked to think."""

    DEEPSEEK = "deepseek"  # {"thinking": {"type": "enabled" | "disabled"}}
    REASONING_EFFORT = "reasoning_effort"  # OpenAI: {"reasoning_effort": "medium"}
    CHAT_TEMPLATE = (
        "chat_template"  # vLLM/SGLang: {"chat_template_kwargs": {"thinking": true, "enable_thinking": true}}
    )
    OPENROUTER = "openrouter"  # {"reasoning": {"enabled": true}} or {"reasoning": {"effort": ...}}
    NONE = "none"


@dataclass(frozen=True)
class ModelRules:
    """What one model id needs. `thinks_by_default`: the model reasons unless told not to (V4, deepseek-reasoner).
    `can_disable_thinking`: whether `thinking=False` is honoured. `reasoning_efforts`: the values the server takes
    (None: anything is passed through); other common names are mapped by `EFFORT_ALIASES`. `deprecated`: a warning
    logged once when the id is used. `context_window`: the model's context size in tokens where known (the agent's
    context policy is on by default then, see agentkit.context)."""

    policy: WirePolicy
    thinks_by_default: bool = False
    can_disable_thinking: bool = True
    reasoning_efforts: tuple[str, ...] | None = None
    deprecated: str | None = None
    context_window: int | None = None


# OpenAI-style effort names mapped onto DeepSeek V4's three levels (DeepSeek maps them the same way server-side).
EFFORT_ALIASES = {"minimal": "low", "medium": "high", "xhigh": "max", "ultra": "max"}


@dataclass(frozen=True)
class Profile:
    name: str
    base_url: str
    api_key_env: str | None
    base_url_env: str
    key_required: bool
    reasoning_fields: tuple[str, ...]
    policy: WirePolicy
    thinking_switch: ThinkingSwitch
    model_rules: dict[str, ModelRules] = field(default_factory=dict)
    user_rules: dict[str, ModelRules] = field(default_factory=dict)  # looked up before `model_rules`
    # Request shaping while thinking: parameters the server refuses (dropped, with a warning) or ignores (dropped).
    thinking_refuses: tuple[str, ...] = ()
    thinking_ignores: tuple[str, ...] = ()
    forced_tool_choice_refused_when_thinking: bool = False
    default_model: str | None = None

    def rules_for(self, model: str) -> ModelRules:
        """The rules of `model`: the user's table (exact id, then glob), then the built-in one, else the profile's
        default."""
        for table in (self.user_rules, self.model_rules):
            found = _lookup(table, model)
            if found is not None:
                return found
        return ModelRules(policy=self.policy)

    def with_rules(self, extra: dict[str, ModelRules]) -> Profile:
        """This profile with `extra` taking precedence over every built-in rule."""
        return replace(self, user_rules={**self.user_rules, **extra})


def _lookup(table: dict[str, ModelRules], model: str) -> ModelRules | None:
    if model in table:
        return table[model]
    for pattern, rules in table.items():
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(model, pattern):
            return rules
    return None


V4_EFFORTS = ("low", "high", "max")
_RETIRED = (
    "{model!r} is a legacy DeepSeek id: since 2026-04-24 it is served by deepseek-v4-flash ({mode}), and it was "
    "retired on 2026-07-24; use model='deepseek-v4-flash' (thinking={thinking})"
)
V4_WINDOW = 1_000_000  # DeepSeek's V4 API (flash and pro): a 1M-token context
V32_WINDOW = 131_072  # DeepSeek-V3.2 weights: 128K tokens
_V4 = ModelRules(DEEPSEEK_V4, thinks_by_default=True, reasoning_efforts=V4_EFFORTS, context_window=V4_WINDOW)
_LEGACY_CHAT = ModelRules(
    DEEPSEEK_V4,
    thinks_by_default=False,
    reasoning_efforts=V4_EFFORTS,
    context_window=V4_WINDOW,
    deprecated=_RETIRED.format(model="deepseek-chat", mode="non-thinking mode", thinking=False),
)
_LEGACY_REASONER = ModelRules(
    DEEPSEEK_V4,
    thinks_by_default=True,
    can_disable_thinking=False,
    reasoning_efforts=V4_EFFORTS,
    context_window=V4_WINDOW,
    deprecated=_RETIRED.format(model="deepseek-reasoner", mode="thinking mode", thinking=True),
)
_V32_WEIGHTS = ModelRules(DEEPSEEK_V32, thinks_by_default=False, context_window=V32_WINDOW)

PROFILES: dict[str, Profile] = {
    "deepseek": Profile(
        name="deepseek",
        base_url="https://api.deepseek.com",
        api_key_env="DEEPSEEK_API_KEY",
        base_url_env="DEEPSEEK_BASE_URL",
        key_required=True,
        reasoning_fields=("reasoning_content",),
        policy=DEEPSEEK_V4,
        thinking_switch=ThinkingSwitch.DEEPSEEK,
        model_rules={
            "deepseek-v4-flash": _V4,
            "deepseek-v4-pro": _V4,
            "deepseek-v4*": _V4,
            "deepseek-chat": _LEGACY_CHAT,
            "deepseek-reasoner": _LEGACY_REASONER,
            "deepseek-v3.2*": _V32_WEIGHTS,
        },
        thinking_refuses=("logprobs", "top_logprobs"),
        thinking_ignores=("temperature", "top_p", "presence_penalty", "frequency_penalty"),
        forced_tool_choice_refused_when_thinking=True,
        default_model="deepseek-v4-flash",
    ),
    "openai": Profile(
        name="openai",
        base_url="https://api.openai.com/v1",
        api_key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
        key_required=True,
        reasoning_fields=("reasoning_content", "reasoning"),
        policy=OPENAI,
        thinking_switch=ThinkingSwitch.REASONING_EFFORT,
        default_model="gpt-4o-mini",
    ),
    "vllm": Profile(
        name="vllm",
        base_url="http://127.0.0.1:8000/v1",
        api_key_env="VLLM_API_KEY",
        base_url_env="VLLM_BASE_URL",
        key_required=False,
        reasoning_fields=("reasoning_content", "reasoning"),
        policy=DEEPSEEK_V32,
        thinking_switch=ThinkingSwitch.CHAT_TEMPLATE,
    ),
    "sglang": Profile(
        name="sglang",
        base_url="http://127.0.0.1:30000/v1",
        api_key_env="SGLANG_API_KEY",
        base_url_env="SGLANG_BASE_URL",
        key_required=False,
        reasoning_fields=("reasoning_content",),
        policy=DEEPSEEK_V32,
        thinking_switch=ThinkingSwitch.CHAT_TEMPLATE,
    ),
    "openrouter": Profile(
        name="openrouter",
        base_url="https://openrouter.ai/api/v1",
        api_key_env="OPENROUTER_API_KEY",
        base_url_env="OPENROUTER_BASE_URL",
        key_required=True,
        reasoning_fields=("reasoning", "reasoning_content"),
        policy=WirePolicy(ReasoningReplay.CURRENT_TURN, reasoning_field="reasoning"),
        thinking_switch=ThinkingSwitch.OPENROUTER,
    ),
    "ollama": Profile(
        name="ollama",
        base_url="http://127.0.0.1:11434/v1",
        api_key_env="OLLAMA_API_KEY",
        base_url_env="OLLAMA_BASE_URL",
        key_required=False,
        reasoning_fields=("reasoning", "thinking", "reasoning_content"),
        policy=WirePolicy(ReasoningReplay.CURRENT_TURN, reasoning_field="reasoning", echo_empty=False),
        thinking_switch=ThinkingSwitch.REASONING_EFFORT,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ConfigurationError(f"unknown provider {name!r}; choose one of: {known}") from None
