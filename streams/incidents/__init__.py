"""The online incident job (``python -m streams incidents``, docs/incidents.md): findings
from the alert topics to OCSF Incident Findings on ``incidents``, with the correlation of
:mod:`scorer.incidents` (the core the offline evaluation runs too).

- :mod:`.router`: stage 1, findings re-keyed by correlation entity onto ``incidents.keyed``;
- :mod:`.correlate`: stage 2, per-partition episodes, changelog, suppression;
- :mod:`.stage`: the consumer-group / transaction loop both run on;
- :mod:`.kafka`: topics, transactions, compacted followers, restore, dead letters;
- :mod:`.job`: both stages in one process, metrics.
"""
