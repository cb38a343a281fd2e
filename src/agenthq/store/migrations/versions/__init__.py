"""Alembic revisions, one module each; a package so wheels install them."""
