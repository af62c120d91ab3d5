"""Finding and removing the Python-backend shared memory a dead server left behind
(``ebjr.ops.shm``), on a fake ``/dev/shm`` and ``/proc``."""

from __future__ import annotations

from ebjr.ops import shm


def fake_system(tmp_path, regions: list[str], mapped: dict[int, list[str]]):
    shm_dir, proc = tmp_path / "shm", tmp_path / "proc"
    shm_dir.mkdir()
    for name in regions:
        (shm_dir / name).write_bytes(b"\0" * 8)
    (shm_dir / "unrelated").write_bytes(b"")
    for pid, names in mapped.items():
        (proc / str(pid)).mkdir(parents=True)
        lines = [f"7f00-7f10 rw-s 00000000 00:1a 42 {shm_dir / name}" for name in names] + [
            "5600-5610 r-xp 00000000 08:01 7 /usr/bin/tritonserver"
        ]
        (proc / str(pid) / "maps").write_text("\n".join(lines) + "\n")
    return shm_dir, proc


def test_only_unmapped_regions_not_excluded_are_removed(tmp_path):
    live, dead, older = (shm.PREFIX + x for x in ("live", "dead", "older"))
    shm_dir, proc = fake_system(tmp_path, [live, dead, older], {10: [live], 11: []})
    assert shm.region_names(shm_dir) == {live, dead, older}
    assert shm.orphans(shm_dir, proc) == {dead, older}
    assert shm.remove_orphans({older}, shm_dir, proc) == [dead]
    assert sorted(p.name for p in shm_dir.iterdir()) == sorted([live, older, "unrelated"])
    assert shm.remove_orphans(set(), shm_dir, proc) == [older]
    assert shm.remove_orphans(set(), shm_dir, proc) == []
