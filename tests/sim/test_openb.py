"""Integration: fill mode on the full openb default trace (1,213 nodes, tuned to 130%), one seed, through
the CLI; the table and the JSON carry the allocation at 100% and 130% of arrived GPU demand."""

from __future__ import annotations

import json

from gpufleet.cli import main


def test_openb_default_fill_reports_allocation_at_100_and_130_percent(openb, tmp_path, capsys):
    out = tmp_path / "openb"
    code = main(["sim", "--cluster", str(openb / "openb_node_list_gpu_node.csv"),
                 "--workload", str(openb / "openb_pod_list_default.csv"), "--policy", "binpack",
                 "--seeds", "42", "--out", str(out), "--quiet"])
    assert code == 0
    table = capsys.readouterr().out
    assert "100%" in table and "130%" in table
    doc = json.loads((out / "results.json").read_text())
    assert doc["experiment"]["gpus"] == 6212
    at = doc["summary"]["binpack"]["allocation_at"]
    # The FGD paper's policies reach 87-96% at 130% on this trace; any sane packer lands in that region.
    assert 80 < at["100"] <= at["130"] < 100
    assert f"{at['130']:.2f}" in table
    run = doc["runs"][0]
    assert run["pods_arrived"] > 8152  # re-sampled to reach 1.3 x 6,212 GPUs
    assert 0 < run["fragmentation_ratio"][0] < 20  # an empty cluster: CPU-only and misfit typical pods only
