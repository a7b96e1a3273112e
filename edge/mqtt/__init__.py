"""MQTT: the room's state, optional face events and Home Assistant discovery, published to a
broker (``[mqtt]``, off by default).

* ``topics``: the topic names and the JSON payloads (the schema in docs/mqtt.md).
* ``spool``: the on-disk queue that holds every message until the broker acknowledged it.
* ``publisher``: the thread that owns the connection (paho-mqtt), reconnects with backoff and
  sends the spool in order.
* ``fleet``: ``emotion-edge fleet``, every device on a broker at a glance.

The sink that feeds it is ``edge/sinks/mqtt.py``.
"""
