"""Shared test settings: hypothesis profiles and the helpers' import path.

``fast`` (the default, and CI's): derandomised with a fixed example budget, so
the suite takes a few minutes on 2 cores. ``thorough``: many more random
examples, for a deliberate run (``HYPOTHESIS_PROFILE=thorough python -m pytest``).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("fast"))
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
