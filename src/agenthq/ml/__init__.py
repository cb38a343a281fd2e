"""Learning from history: telemetry features, the failure model, trends and their charts.

`features` and `trends` need nothing beyond the core install; `model` and `charts` import
scikit-learn, skops and matplotlib (the `learn` extra) only when they are called.
"""
