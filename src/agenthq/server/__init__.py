"""`agenthq serve`: the HTTP API, the live event stream, the dashboard and the run host.

One process on loopback: it executes detached runs (server/host.py), serves `/api/…`
(routes/api.py), streams events (routes/stream.py) and renders the dashboard
(routes/dashboard.py). Every endpoint but `/healthz` needs the token in `AGENTHQ_HOME/token`.
"""
