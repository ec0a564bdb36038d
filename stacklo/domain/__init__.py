"""Pure business rules and the use cases that run them through ports.

Nothing here imports SQLAlchemy, strawberry, Starlette or a network client.
"""
