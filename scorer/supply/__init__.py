"""The supply chain of what the scorer loads: signatures over model versions and rule packs
(:mod:`scorer.supply.signing`; ``python -m scorer.supply keygen|sign|verify``)."""
