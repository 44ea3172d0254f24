from __future__ import annotations

# Tests of the pytest plugin run inner pytest sessions.
pytest_plugins = ["pytester"]
