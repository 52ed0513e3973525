"""The scorer's side of entity profiles: keys, the join into feature set v2, the topic view.

- :mod:`scorer.profiles.schema`: the records on ``profiles.<kind>`` (compacted);
- :mod:`scorer.profiles.keys`: which profile keys an event belongs to (shared with streams/);
- :mod:`scorer.profiles.join` / :mod:`scorer.profiles.columns`: reading profiles into columns;
- :mod:`scorer.profiles.view`: the read-only, bounded local view of the profile topics.
"""
