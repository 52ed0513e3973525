"""Evaluation of a replay: join truth, scores and alerts by event uid; metrics; reports."""
