"""Helpers the tests share: generated data, fakes, fixtures\x27 types. Fixtures themselves live in conftest.py."""
