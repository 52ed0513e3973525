"""Training and export of the shipped classifiers (netflow, EDR, SIEM).

``python -m models.train netflow|edr|siem|all [--repo model_repository]``; see
models/README.md for the data, the group splits and the model cards.
"""
