"""Tests of llp.landscape."""
