"""The simulator: real video-generation protocols on loopback, backed by the local generator.

``Simulator`` serves four protocols from one HTTP server: the Gemini API (Veo, API key),
Vertex AI (Veo, bearer token, optional Cloud Storage results), the OpenAI Videos API (Sora 2,
and Veo ids as relays serve them) and a relay shape for Veo 3.1. Videos are real MP4s made
by :class:`composer.backends.local.LocalBackend`; requests are checked as the real services
check them; faults are injected on demand (``FaultSpec``, grammar in ``docs/simulator.md``).
The test suite and benchmarks run composer's API backends and the official SDKs against it.

What lives here: the front door only. The pieces: ``server.py`` (Simulator, dispatch),
``http.py`` (sockets), ``engine.py`` (storage, renders, operations, stats), ``faults.py``,
``veo.py`` + ``google.py`` + ``gemini.py`` + ``vertex.py``, ``openai.py``, ``relay.py``,
``multipart.py`` and ``cli.py`` (``composer sim`` / ``python -m composer.sim``).

::

    with Simulator(latency_s=0.05, faults="429@create=1x") as sim:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sim.base_url))
"""

from __future__ import annotations

from composer.sim.cli import main
from composer.sim.faults import FaultRule, FaultSpec, parse_faults
from composer.sim.server import Simulator

__all__ = ["FaultRule", "FaultSpec", "Simulator", "main", "parse_faults"]
