"""Protocol ends and reference simulators of external systems."""
