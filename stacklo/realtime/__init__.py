"""Broadcast wiring, the outbox relay, channel names, resumable subscription streams."""
