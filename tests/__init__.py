"""Tests for aioworker."""
