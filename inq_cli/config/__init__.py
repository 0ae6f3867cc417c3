"""Recipes: the schema, loading with `key=value` overrides, and one-line validation errors."""
