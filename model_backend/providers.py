"""Provider profiles: everything that differs between OpenAI-compatible servers, as data.

A profile says where the server is, which environment variable holds the key, what reasoning is called on the wire in
each direction, how thinking is switched on, which earlier reasoning must be sent back (`WirePolicy`), and which
request parameters the server refuses or ignores while thinking. Per-model rules (DeepSeek V3.2 vs V4 ids) are looked
up in `model_rules` by exact id, then by glob pattern; users extend the table instead of patching code.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from enum import StrEnum

from agentkit.errors import ConfigurationError
from agentkit.messages import DEEPSEEK_V4, DEEPSEEK_V32, NO_REASONING, ReasoningReplay, WirePolicy


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
    """What one model id needs. `thinks_by_default`: the model reasons unless told not to (deepseek-reasoner, V4).
    `can_disable_thinking`: whether `thinking=False` is honoured."""

    policy: WirePolicy
    thinks_by_default: bool = False
    can_disable_thinking: bool = True


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
    # Request shaping while thinking: parameters the server refuses (dropped, with a warning) or ignores (dropped).
    thinking_refuses: tuple[str, ...] = ()
    thinking_ignores: tuple[str, ...] = ()
    forced_tool_choice_refused_when_thinking: bool = False
    default_model: str | None = None

    def rules_for(self, model: str) -> ModelRules:
        """The rules of `model`: exact id first, then the first matching glob, else the profile's default."""
        if model in self.model_rules:
            return self.model_rules[model]
        for pattern, rules in self.model_rules.items():
            if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(model, pattern):
                return rules
        return ModelRules(policy=self.policy)

    def with_rules(self, extra: dict[str, ModelRules]) -> Profile:
        return replace(self, model_rules={**extra, **self.model_rules})


_V32_REASONER = ModelRules(DEEPSEEK_V32, thinks_by_default=True, can_disable_thinking=False)
_V32_CHAT = ModelRules(DEEPSEEK_V32, thinks_by_default=False)
_V4 = ModelRules(DEEPSEEK_V4, thinks_by_default=True)

PROFILES: dict[str, Profile] = {
    "deepseek": Profile(
        name="deepseek",
        base_url="https://api.deepseek.com",
        api_key_env="DEEPSEEK_API_KEY",
        base_url_env="DEEPSEEK_BASE_URL",
        key_required=True,
        reasoning_fields=("reasoning_content",),
        policy=DEEPSEEK_V32,
        thinking_switch=ThinkingSwitch.DEEPSEEK,
        model_rules={
            "deepseek-reasoner": _V32_REASONER,
            "deepseek-chat": _V32_CHAT,
            "deepseek-v3.2*": _V32_CHAT,
            "deepseek-v4*": _V4,
        },
        thinking_refuses=("logprobs", "top_logprobs"),
        thinking_ignores=("temperature", "top_p", "presence_penalty", "frequency_penalty"),
        forced_tool_choice_refused_when_thinking=True,
        default_model="deepseek-chat",
    ),
    "openai": Profile(
        name="openai",
        base_url="https://api.openai.com/v1",
        api_key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
        key_required=True,
        reasoning_fields=("reasoning_content", "reasoning"),
        policy=NO_REASONING,
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
