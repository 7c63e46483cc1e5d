"""Model backends: the remote OpenAI-compatible API and the local DSA model, behind `agentkit.ModelBackend`.

Only light modules are imported here; the local model (torch) loads on first use.
"""

from model_backend.providers import PROFILES, ModelRules, Profile, get_profile
from model_backend.remote import RemoteBackend

__all__ = ["PROFILES", "ModelRules", "Profile", "RemoteBackend", "get_profile"]
