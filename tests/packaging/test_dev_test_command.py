"""`python3 dev.py test`: the full run spreads over pytest-xdist workers, and the launches
recorded by each worker of the simulator pass all reach tests/cuda/ptx_check.py."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_dev(monkeypatch, argv: list[str], cores: int) -> list[tuple[list[str], dict]]:
    dev = _load("dev_script_for_test", ROOT / "dev.py")
    ran: list[tuple[list[str], dict]] = []
    monkeypatch.setattr(dev, "ensure_env", lambda extras: None)
    monkeypatch.setattr(dev, "_cuda_extra", lambda: "cuda")
    monkeypatch.setattr(dev, "_run", lambda cmd, env=None: ran.append(([str(c) for c in cmd], env or {})) or 0)
    monkeypatch.setattr(dev.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert dev.main(argv) == 0
    return ran


def test_the_full_run_uses_a_worker_per_core_up_to_four(monkeypatch):
    for cores, want in ((2, ["-n", "2"]), (16, ["-n", "4"])):
        main, sim, ptx = _run_dev(monkeypatch, ["test"], cores)
        assert main[0][main[0].index("pytest"):] == ["pytest", "-q", *want]
        assert sim[0][-3:] == [*want, "tests/cuda"] and sim[1]["NUMBA_ENABLE_CUDASIM"] == "1"
        # ptx_check reads the file the simulator pass was told to record into (and its workers' siblings)
        assert ptx[0][ptx[0].index("--launches") + 1] == sim[1]["CNNLAB_RECORD_LAUNCHES"]


def test_one_core_or_the_users_own_arguments_run_plain_pytest(monkeypatch):
    (main, _), *rest = _run_dev(monkeypatch, ["test"], 1)
    assert "-n" not in main and len(rest) == 2
    (only, _), = _run_dev(monkeypatch, ["test", "-k", "conv"], 8)
    assert only[only.index("pytest"):] == ["pytest", "-q", "-k", "conv"]


def test_ptx_check_merges_every_workers_record(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "cuda"))
    ptx_check = _load("ptx_check_for_test", ROOT / "tests" / "cuda" / "ptx_check.py")
    a = [[["m", "k1"], ["int64"]]]
    b = [[["m", "k2"], ["float64"]], [["m", "k1"], ["int64"]]]
    path = tmp_path / "launches.json"
    assert ptx_check.load_launches(str(path)) == []          # nothing recorded: main() says so
    (tmp_path / "launches.json.gw0").write_text(json.dumps(a))
    (tmp_path / "launches.json.gw1").write_text(json.dumps(b))
    (tmp_path / "other.json.gw2").write_text(json.dumps([[["m", "stray"], []]]))
    assert ptx_check.load_launches(str(path)) == a + b
    path.write_text(json.dumps([[["m", "k0"], []]]))         # a serial run's file comes first
    assert ptx_check.load_launches(str(path)) == [[["m", "k0"], []]] + a + b
