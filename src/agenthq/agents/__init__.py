"""Agents: the registry that places steps on them, their kinds, and the built-in ones."""
