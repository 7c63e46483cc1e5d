"""Cost of a run in USD from token counts and a per-model price table.

Prices change; the defaults are DeepSeek's published list prices (USD per million tokens) for V4-Flash (and the legacy
ids routed to it) and for the V3.2 generation, and every entry can be overridden per model id (`Agent(pricing={...})` or `register_price`). Unknown models cost 0
and say so via `price_for(...) is None`, rather than inventing a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentkit.backend import Usage


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens. Cache-hit input is billed at its own rate where the provider reports hits."""

    input_cache_miss: float
    output: float
    input_cache_hit: float | None = None

    def cost(self, usage: Usage) -> float:
        hit = usage.cache_hit_tokens
        miss = (
            usage.cache_miss_tokens
            if (usage.cache_hit_tokens or usage.cache_miss_tokens)
            else usage.prompt_tokens
        )
        if usage.cache_hit_tokens and not usage.cache_miss_tokens:
            miss = max(usage.prompt_tokens - hit, 0)
        hit_rate = self.input_cache_hit if self.input_cache_hit is not None else self.input_cache_miss
        return (
            hit * hit_rate + miss * self.input_cache_miss + usage.completion_tokens * self.output
        ) / 1_000_000


# DeepSeek list prices. V4-Flash (mid-2026; deepseek-chat / deepseek-reasoner were routed to it): $0.028 cache hit,
# $0.14 cache miss, $0.28 output. V3.2: $0.028 / $0.28 / $0.42. V4-Pro is not listed: register its price yourself.
_DEEPSEEK_V4_FLASH = ModelPrice(input_cache_miss=0.14, output=0.28, input_cache_hit=0.028)
_DEEPSEEK_V32 = ModelPrice(input_cache_miss=0.28, output=0.42, input_cache_hit=0.028)

DEFAULT_PRICES: dict[str, ModelPrice] = {
    "deepseek-v4-flash": _DEEPSEEK_V4_FLASH,
    "deepseek-chat": _DEEPSEEK_V4_FLASH,
    "deepseek-reasoner": _DEEPSEEK_V4_FLASH,
    "deepseek-v3.2": _DEEPSEEK_V32,
    "local-dsa": ModelPrice(0.0, 0.0, 0.0),
}


def price_for(model: str, overrides: dict[str, ModelPrice] | None = None) -> ModelPrice | None:
    """The price of `model`: an override, the default table, or None when unknown."""
    if overrides and model in overrides:
        return overrides[model]
    return DEFAULT_PRICES.get(model)


def register_price(model: str, price: ModelPrice) -> None:
    """Add or replace a default price for every agent in this process."""
    DEFAULT_PRICES[model] = price


def cost_of(model: str, usage: Usage, overrides: dict[str, ModelPrice] | None = None) -> float:
    price = price_for(model, overrides)
    return price.cost(usage) if price else 0.0
