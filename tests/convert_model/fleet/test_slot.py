"""The node's timing slot: one holder at a time; a holder that died is taken over."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from convert_model.fleet.slot import TimingSlot


def test_timing_slot_makes_a_second_holder_wait_until_the_first_releases():
    me = os.getpid()  # a live process holds the slot first

    async def scenario() -> list[str]:
        slot, events = TimingSlot(), []
        await slot.acquire(me)
        second = asyncio.create_task(slot.acquire(2))
        await asyncio.sleep(0.2)
        events.append(f"waiting={not second.done()}")
        await slot.release(2)  # only the holder can release
        await asyncio.sleep(0.1)
        events.append(f"waiting={not second.done()}")
        await slot.release(me)
        await second
        events.append(f"holder={await slot.holder()}")
        return events

    assert asyncio.run(scenario()) == ["waiting=True", "waiting=True", "holder=2"]


def test_timing_slot_is_taken_over_when_its_holder_died():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()

    async def scenario() -> int | None:
        slot = TimingSlot()
        await slot.acquire(dead.pid)
        await asyncio.wait_for(slot.acquire(7), timeout=5)
        return await slot.holder()

    assert asyncio.run(scenario()) == 7
