"""The embedded classroom: pull small open models from PyPI wheels and serve them with vLLM.

Other code talks to any OpenAI-compatible endpoint; this package only provides local ones.
"""

from lbt_agents.serving.classroom import Classroom, serve_classroom
from lbt_agents.serving.pull import default_cache_dir, pull_model, pulled_model_dir
from lbt_agents.serving.registry import EMBEDDED_CLASSROOM, MODELS, ModelSpec, WheelPart, get_model
from lbt_agents.serving.server import Endpoint, VllmServer

__all__ = [
    "EMBEDDED_CLASSROOM",
    "MODELS",
    "Classroom",
    "Endpoint",
    "ModelSpec",
    "VllmServer",
    "WheelPart",
    "default_cache_dir",
    "get_model",
    "pull_model",
    "pulled_model_dir",
    "serve_classroom",
]
