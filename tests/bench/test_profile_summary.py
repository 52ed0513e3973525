from pathlib import Path

from scorer.bench.profile_summary import summarise


def test_counts_inclusive_and_self_samples_within_a_frame(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "main (a.py:1);run (s.py:10);decode (d.py:5) 3\n"
        "main (a.py:1);run (s.py:11);decode (d.py:6);helper (h.py:2) 2\n"
        "main (a.py:1);startup (a.py:9) 5\n"
    )
    total, inclusive, own = summarise(raw, within="run (")
    assert total == 5
    assert inclusive["decode (d.py)"] == 5 and inclusive["run (s.py)"] == 5
    assert own == {"decode (d.py)": 3, "helper (h.py)": 2}
    assert summarise(raw)[0] == 10


def test_reads_a_gzipped_profile_as_the_text(tmp_path: Path) -> None:
    import gzip

    text = "main (a.py:1);run (s.py:10);decode (d.py:5) 3\nmain (a.py:1);startup (a.py:9) 5\n"
    (tmp_path / "p.txt").write_text(text)
    (tmp_path / "p.txt.gz").write_bytes(gzip.compress(text.encode()))
    assert summarise(tmp_path / "p.txt.gz") == summarise(tmp_path / "p.txt")
