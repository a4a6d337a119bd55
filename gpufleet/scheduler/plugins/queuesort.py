"""PrioritySort (QueueSort): higher pod priority first, then the earlier queue timestamp.

Rule: kube-scheduler pkg/scheduler/framework/plugins/queuesort/priority_sort.go.
"""

from __future__ import annotations

from ..framework import Plugin
from ..queue import priority_less


class PrioritySort(Plugin):
    name = "PrioritySort"

    def less(self, a, b) -> bool:
        return priority_less(a, b)
