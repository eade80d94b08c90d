#!/usr/bin/env python3
"""A Python service on the same Redis bus as athomic, written the way the Athomic framework's
RedisEventBus works: an event is the payload JSON object with the execution context inserted
under "_nala_context", published on channel "{key_prefix}:{event_name}"; a subscriber decodes
it and takes "_nala_context" out again.

    python_peer.py PORT KEY_PREFIX

Subscribes to "cpp.to.py", prints "ready", waits for one event and prints it as
{"payload": ..., "context": ...}; then publishes "py.to.cpp" with a context of its own (and the
correlation_id it received) and exits 0. Any failure is printed as "error: ..." and exits 1.
"""
import json
import sys
import time

CONTEXT_KEY = "_nala_context"


class RedisEventBus:
    def __init__(self, client, key_prefix):
        self.client = client
        self.key_prefix = key_prefix

    def channel(self, event_name):
        return f"{self.key_prefix}:{event_name}"

    def publish(self, event_name, payload, context):
        message = dict(payload)
        message[CONTEXT_KEY] = context
        self.client.publish(self.channel(event_name), json.dumps(message))

    @staticmethod
    def decode(data):
        payload = json.loads(data)
        context = payload.pop(CONTEXT_KEY, {})
        return payload, context


def next_message(pubsub, kind, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if m and m["type"] == kind:
            return m
    raise TimeoutError(f"no {kind} within {timeout} s")


def main():
    try:
        import redis
    except ImportError:
        print("error: the Python package 'redis' is missing: install Debian's python3-redis "
              "(scripts/install-deps.sh)", flush=True)
        return 1
    port, key_prefix = int(sys.argv[1]), sys.argv[2]
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
    bus = RedisEventBus(client, key_prefix)
    pubsub = client.pubsub()
    pubsub.subscribe(bus.channel("cpp.to.py"))
    next_message(pubsub, "subscribe", 30)
    print("ready", flush=True)

    payload, context = RedisEventBus.decode(next_message(pubsub, "message", 30)["data"])
    print(json.dumps({"payload": payload, "context": context}), flush=True)

    bus.publish("py.to.cpp", {"id": "py-1", "echo": payload},
                {"trace_id": "py-trace", "tenant_id": "py-tenant", "user_id": "py-user",
                 "locale": "pt-BR", "correlation_id": context.get("correlation_id"),
                 "feature_flags": {"new_checkout": True}})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # reported to the test on stdout
        print(f"error: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
