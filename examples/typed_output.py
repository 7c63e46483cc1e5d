"""Typed outputs: `result.output` is an instance of your pydantic model (or dataclass, or JSON Schema data).

Run against DeepSeek:  DEEPSEEK_API_KEY=sk-... python examples/typed_output.py

In thinking mode DeepSeek refuses JSON mode and forced tool choice, so the schema travels as a `final_answer` tool;
an invalid answer goes back to the model with the validation errors (`output_retries` times, then status="error").
"""

import os

from pydantic import BaseModel, Field

from agentkit import Agent
from agentkit.backends import RemoteBackend


class City(BaseModel):
    name: str
    country: str
    population: int = Field(ge=0, description="inhabitants of the city proper")


backend = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))
agent = Agent(backend, output_type=City, output_retries=2)
result = agent.run_sync("Which is the largest city of Norway?")
city: City = result.output
print(repr(city))
print(f"{result.status}: {result.turns} turns")
