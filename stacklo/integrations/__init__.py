"""Adapters to outside services (payment providers); each implements a port of ``domain.ports``.

The domain never imports from here: the application wires an adapter in, and tests wire a fake
server behind the same adapter, so the HTTP, retry and circuit-breaker code is what gets tested.
"""
