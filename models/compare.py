"""Before/after tables: a model on feature set v1 against the same recipe on a later set (v2,
v3), same rows and folds, so the difference is the new features and nothing else."""

from __future__ import annotations

from .tables import table


def compare(before: dict[str, float], before_units: dict[str, float],
            after: dict[str, float], after_units: dict[str, float], label: str = "with profiles") -> str:
    rows = [[k, before[k], after[k], after[k] - before[k]] for k in sorted(before) if k in after]
    main = table(["metric (group split, out of fold)", "v1 features", label, "change"], rows)
    units = sorted(set(before_units) & set(after_units))
    gained = [u for u in units if before_units[u] == 0 < after_units[u]]
    lost = [u for u in units if after_units[u] == 0 < before_units[u]]
    moved = [[u, before_units[u], after_units[u]] for u in units if before_units[u] != after_units[u]]
    detail = table(["unit (capture / family / step)", "recall v1", f"recall {label}"], moved) if moved else ""
    return (f"### Before and after (same rows, same folds; v1 = the v1 columns only)\n\n{main}\n\n"
            f"Newly detected: {', '.join(gained) or 'none'}\n\nNo longer detected: {', '.join(lost) or 'none'}"
            + (f"\n\n{detail}" if detail else ""))
