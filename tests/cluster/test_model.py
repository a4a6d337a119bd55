"""core/v1 toleration matching and pod defaults."""

import pytest

from gpufleet.cluster import MILLI_PER_GPU, Pod, Taint, Toleration

NO_SCHEDULE = Taint("dedicated", "gpu", "NoSchedule")


@pytest.mark.parametrize("toleration, taint, tolerated", [
    (Toleration("dedicated", "Equal", "gpu", "NoSchedule"), NO_SCHEDULE, True),
    (Toleration("dedicated", "Equal", "cpu", "NoSchedule"), NO_SCHEDULE, False),  # value differs
    (Toleration("dedicated", "Exists", "", "NoSchedule"), NO_SCHEDULE, True),  # Exists ignores the value
    (Toleration("other", "Exists"), NO_SCHEDULE, False),  # key differs
    (Toleration("", "Exists"), NO_SCHEDULE, True),  # empty key + Exists tolerates everything
    (Toleration("", "Exists", effect="NoExecute"), NO_SCHEDULE, False),  # ...of its effect only
    (Toleration("dedicated", "Equal", "gpu"), NO_SCHEDULE, True),  # empty effect matches every effect
    (Toleration("dedicated", "Equal", "gpu", "NoExecute"), NO_SCHEDULE, False),  # effect differs
    (Toleration("dedicated", "Equal", "gpu", "PreferNoSchedule"), Taint("dedicated", "gpu", "PreferNoSchedule"),
     True),
    (Toleration("", "Equal", ""), Taint("x", "", "NoSchedule"), False),  # invalid in the API; tolerates nothing
])
def test_toleration_rules(toleration, taint, tolerated):
    assert toleration.tolerates(taint) is tolerated


def test_gpu_pod_defaults_to_whole_gpus_and_reads_its_pod_group_label():
    pod = Pod("p", num_gpu=2, labels={"scheduling.x-k8s.io/pod-group": "job-1"})
    assert pod.gpu_milli == MILLI_PER_GPU
    assert pod.gpu_request_milli == 2000
    assert not pod.is_fractional
    assert pod.pod_group == "job-1"
    share = Pod("q", num_gpu=1, gpu_milli=250)
    assert share.is_fractional and share.gpu_request_milli == 250
    assert Pod("r").key == "default/r"
