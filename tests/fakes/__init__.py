"""Local stand-ins for outside services, served over real HTTP on 127.0.0.1 for tests."""
