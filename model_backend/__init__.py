"""Model backends: the remote OpenAI-compatible API and the local DSA model, behind `agentkit.ModelBackend`.

Only light modules are imported here; the local model (torch) loads on first use.
"""

from agentkit.backends.providers import PROFILES, ModelRules, Profile, get_profile
from agentkit.backends.remote import RemoteBackend

__all__ = ["PROFILES", "ModelRules", "Profile", "RemoteBackend", "get_profile"]
