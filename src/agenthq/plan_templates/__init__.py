"""Plan files `agenthq new` starts from (data, read with importlib.resources)."""
