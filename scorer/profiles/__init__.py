"""Entity profiles: their state and update rule, the join into feature set v2, the topic view.

- :mod:`scorer.profiles.schema`: the records on ``profiles.<kind>`` (compacted);
- :mod:`scorer.profiles.keys`: which profile keys an event belongs to;
- :mod:`scorer.profiles.store` / :mod:`scorer.profiles.updates` / :mod:`scorer.profiles.clock`:
  the profile state, the update rule and the stream clock expiry runs on; the profile job
  (streams/) runs them online, :mod:`scorer.profiles.local` in process (training, embedded);
- :mod:`scorer.profiles.join` / :mod:`scorer.profiles.columns`: reading profiles into columns;
- :mod:`scorer.profiles.view`: the read-only, bounded local view of the profile topics.
"""
