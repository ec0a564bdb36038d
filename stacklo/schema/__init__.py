"""The GraphQL schema: strawberry types, inputs, payloads; ``root.py`` assembles it."""
