"""Routing: declarative rules (the config's `routes:`) and recipient lists from content."""

from hub.routing.rules import RouteDecision, RoutingRule, resolve, route

__all__ = ["RouteDecision", "RoutingRule", "resolve", "route"]
