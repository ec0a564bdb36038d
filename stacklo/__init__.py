"""Stacklo: a GraphQL backend for a consumer fintech platform."""

__version__ = "0.1.0"
