"""Fault-injection ("chaos") suite: nothing answered 202 is lost while faults are injected."""
