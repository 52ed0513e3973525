"""Model and rule-pack lifecycle: package, validate, shadow, promote, roll back, while the scorer runs.

- ``package`` / ``validate`` / ``contract`` / ``golden``: from a trained model to a
  verified version in the model repository, and a verdict against production;
- ``control`` / ``transitions`` / ``ops`` / ``cli``: the desired state per kind on a
  compacted Kafka topic, and the ``scorer models`` commands that write and read it;
- ``controller`` / ``switcher`` / ``loader`` / ``shadow``: inside every scorer process,
  following that topic and switching models between micro-batches;
- ``rulepacks`` / ``rule_switch`` / ``rule_ops``: the same for Sigma rule packs (control key
  ``rules/<pack>``, ``scorer rules deploy|promote|rollback|list``): a pack's checks, its
  install into the EDR runtime, and the CLI side.

See docs/model-lifecycle.md.
"""
