"""Delivery of events and messages on RabbitMQ: publisher confirms, the outbox relay, the inbox (exactly-once apply,
retries, dead letters), batch consumers, the message guard, the producer check, and the crash points of the delivery
path."""
