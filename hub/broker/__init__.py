"""Broker plumbing: one transport interface, an in-process and an AMQP implementation."""

from __future__ import annotations

from hub.broker.transport import Consumer, Incoming, Outgoing, Transport, open_transport

__all__ = ["Consumer", "Incoming", "Outgoing", "Transport", "open_transport"]
