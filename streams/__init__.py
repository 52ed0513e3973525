"""Stream jobs beside the scorer's hot path: long-horizon entity profiles.

- the profile state, its update rule and its clock live in the core (:mod:`scorer.profiles.store`,
  :mod:`~scorer.profiles.updates`, :mod:`~scorer.profiles.clock`): the embedded scorer and
  training run the same rule in process (:mod:`scorer.profiles.local`);
- :mod:`streams.worker`: the online job (aiokafka): events in, profiles out to the compacted
  ``profiles.<kind>`` topic, offsets committed only after the profiles are acknowledged;
Not faust-streaming: under concurrency it commits offsets past messages still in flight
(its issue #606) and its tables double-count after a crash; both are reproduced against the
real broker in tests/streams/test_faust.py (docs/profiles.md has the details).
"""
