"""Executors run one attempt of a step and report an Outcome (see base.py for the contract)."""
