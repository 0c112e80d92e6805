"""Outbound events: CloudEvents webhooks and GitHub Deployments, delivered from the store's transactional outbox.

``bot.store.events`` records each event with its deliveries in the transaction of the change it describes;
``deliver`` runs one worker per target over those rows; ``webhook`` POSTs signed CloudEvents; ``cloudevents`` is
the envelope and its signature; ``setup`` turns the config into targets and senders. docs/events.md tells it all.
"""
