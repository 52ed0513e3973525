"""Stream jobs beside the scorer's hot path: long-horizon entity profiles.

- :mod:`streams.store` / :mod:`streams.updates`: the profile state and its update rule;
- :mod:`streams.offline`: the same rule run in process (training, the embedded scorer);
- :mod:`streams.worker`: the online job (aiokafka): events in, profiles out to the compacted
  ``profiles.<kind>`` topic, offsets committed only after the profiles are acknowledged;
Not faust-streaming: under concurrency it commits offsets past messages still in flight
(its issue #606) and its tables double-count after a crash; both are reproduced against the
real broker in tests/streams/test_faust.py (docs/profiles.md has the details).
"""
