"""A stub OpenAI-compatible server for tests and benchmarks: fast, scripted, counting.

``with StubServer(respond=fn) as stub:`` serves ``/v1/chat/completions`` (streamed or not, with ``n``,
usage and ``finish_reason``), ``/v1/completions`` and ``/v1/models`` at ``stub.base_url``, answering
``fn(request_body, choice_index)`` (default: the last user message); ``stub.requests`` counts what it
received.  ``lbt stub serve`` runs one from the command line.
"""

from lbt_agents.stub._app import DEFAULT_MODEL, StubConfig
from lbt_agents.stub._responders import FixedText, Responder, echo, load_script
from lbt_agents.stub._server import StubServer, serve

__all__ = ["DEFAULT_MODEL", "FixedText", "Responder", "StubConfig", "StubServer", "echo", "load_script", "serve"]
