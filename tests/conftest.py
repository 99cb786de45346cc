import os
import sys

from hypothesis import HealthCheck, settings

# tests import their helpers (reference, models) as top-level modules
sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
