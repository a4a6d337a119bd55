import pytest

from gpufleet.serving.errors import ProfileError
from gpufleet.serving.profiles import load_profiles, write_profiles


def test_csv_roundtrip_and_interpolation(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("model,batch,partition_pct,batch_latency_ms,throughput_rps\n"
                    "m,1,50,4,0\nm,8,50,18,0\nm,1,100,2,0\nm,8,100,9,0\n")
    prof = load_profiles(path)["m"]
    assert prof.partitions == [50, 100] and prof.max_batch == 8
    assert prof.latency(1, 100) == 2
    assert prof.latency(4, 100) == pytest.approx(2 + 3 * 1.0)      # along the batch axis: 2 + (9-2)/7 * 3
    assert prof.latency(4, 75) == pytest.approx((5 + 10) / 2)      # between partitions: L(4,50) = 4 + 2*3 = 10
    assert prof.latency(9, 100) == float("inf")                     # above the largest measured batch
    assert prof.throughput(8, 100) == pytest.approx(8000 / 9)
    write_profiles(tmp_path / "q.csv", [prof])
    assert load_profiles(tmp_path / "q.csv")["m"].latency(4, 75) == pytest.approx(7.5)


def test_bad_csv_names_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("model,batch,partition_pct,batch_latency_ms\nm,1,50,4\nm,two,50,4\n")
    with pytest.raises(ProfileError, match=r"bad.csv:3: expected integer batch"):
        load_profiles(path)
    path.write_text("model,batch,latency\n")
    with pytest.raises(ProfileError, match=r"bad.csv:1: header must name"):
        load_profiles(path)


def test_missing_model_is_a_clear_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("model,batch,partition_pct,batch_latency_ms\nm,1,100,1\n")
    with pytest.raises(ProfileError, match="no latency profile for model 'x'.*m"):
        load_profiles(path, ["x"])
