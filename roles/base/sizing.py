"""Memory sizing rules of the base role, in one place so the docs, the preflight and the tests agree."""

from __future__ import annotations

import math

# The seeds' ceiling: swap is a buffer, never more than a fifth of RAM.
SWAP_CAP_FRACTION = 0.20
# The model needs its file size plus ~20 % for KV cache and compute buffers (seed: RAM >= params x 1.2).
MODEL_OVERHEAD_FACTOR = 1.2
HUGETLB_PAGE_MIB = 2


def swap_cap_mib(memory_gib: float) -> int:
    return math.floor(memory_gib * 1024 * SWAP_CAP_FRACTION)


def auto_swap_mib(memory_gib: float) -> int:
    """ceil(sqrt(RAM in GiB)) GiB -- the usual rule for a box that never hibernates -- capped at 20 % of RAM."""
    return min(math.ceil(math.sqrt(memory_gib)) * 1024, swap_cap_mib(memory_gib))


def hugetlb_room_gib(memory_gib: float, model_gib: float, reserve_gib: float) -> float:
    """What is left for a HugeTLB pool once the model (with its overhead) and the system have their share."""
    return memory_gib - model_gib * MODEL_OVERHEAD_FACTOR - reserve_gib


def hugetlb_pages(pool_mib: int) -> int:
    return pool_mib // HUGETLB_PAGE_MIB
