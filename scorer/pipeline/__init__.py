"""The hot path, one module per step, in the order a record takes them::

    source    Kafka records -> InputRecord (kind from topic or header)       source.py
    decode    bytes -> canonical event, or a DecodeFailure                    decode.py
    rules     EDR events through the Sigma rule pack (hits on the event)      rules.py
    features  events -> float32 matrix per kind                               features.py
    inference matrix -> P(malicious), production and shadow models            inference.py
    decide    scores + rule hits -> OCSF findings, score records             decide.py
    sink      outputs produced, offsets committed after the acks              sink.py

:class:`scoring.BatchScorer` runs decode..decide over one micro-batch (no Kafka: the demo
and benchmarks drive it too); :class:`loop.ScoringLoop` runs source -> BatchScorer -> sink.
A record a step gives up on becomes a :class:`scorer.events.RecordFailure`, then a dead
letter (deadletter.py); :class:`outcome.BatchOutcome` accounts for every record.
"""
