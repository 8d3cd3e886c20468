"""The store: the record of truth (messages, deliveries, trace hops, inbox, outbox)."""
