"""The random pool: os.urandom's bytes in blocks, never handed out twice, not shared with a fork."""

from __future__ import annotations

import os
import uuid

from carewire import randomness
from carewire.randomness import BLOCK, random_bytes, uuid4


def test_slices_are_never_repeated_and_span_refills() -> None:
    taken = [random_bytes(12) for _ in range(3 * BLOCK // 12)]  # several blocks' worth
    assert all(len(t) == 12 for t in taken)
    assert len(set(taken)) == len(taken)
    assert len(random_bytes(BLOCK)) == BLOCK  # large requests go straight to the kernel


def test_uuids_are_version_4_in_the_usual_form() -> None:
    ids = [uuid4() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_does_not_reuse_the_parents_bytes() -> None:
    random_bytes(16)  # the pool holds unused bytes now
    left = randomness._buffer[randomness._offset :]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the next bytes it gets
        os.close(read)
        os.write(write, random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child not in left
    assert random_bytes(32) == left[:32]  # the parent carries on with its own pool
