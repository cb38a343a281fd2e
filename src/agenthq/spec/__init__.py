"""The plan language: models (what a plan may say), load (YAML → models with positions),
templating (the Jinja2 sandbox every template renders in)."""
