from __future__ import annotations

import os
import signal

import pytest

from convert_model.core.signals import Terminated, terminate_as_interrupt


def test_sigterm_raises_terminated_inside_and_is_restored_after() -> None:
    before = signal.getsignal(signal.SIGTERM)
    ran_finally = []
    with pytest.raises(Terminated), terminate_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # a point where the handler runs
        finally:
            ran_finally.append(True)
    assert ran_finally == [True]
    assert signal.getsignal(signal.SIGTERM) is before
    assert issubclass(Terminated, KeyboardInterrupt)
