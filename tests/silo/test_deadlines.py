"""The watchdog that enforces partial queries' time limits."""

from __future__ import annotations

import threading

from fedsql.silo.deadlines import Watchdog


def test_an_armed_callback_fires_once_its_deadline_passes() -> None:
    dog = Watchdog()
    fired = threading.Event()
    dog.arm(0.01, fired.set)
    assert fired.wait(10)


def test_a_disarmed_callback_never_fires() -> None:
    dog = Watchdog()
    calls: list[str] = []
    done = threading.Event()
    dog.disarm(dog.arm(0.01, lambda: calls.append("disarmed")))
    dog.arm(0.05, done.set)  # fires after the disarmed deadline would have
    assert done.wait(10)
    assert calls == []


def test_an_earlier_deadline_armed_later_wakes_the_watchdog() -> None:
    dog = Watchdog()
    order: list[str] = []
    first = threading.Event()
    late = dog.arm(3600, lambda: order.append("late"))
    dog.arm(0.01, lambda: (order.append("early"), first.set()))
    assert first.wait(10)
    dog.disarm(late)
    assert order == ["early"]


def test_a_failing_callback_does_not_stop_the_watchdog() -> None:
    dog = Watchdog()
    after = threading.Event()

    def boom() -> None:
        raise RuntimeError("callback failed")

    dog.arm(0.01, boom)
    dog.arm(0.02, after.set)
    assert after.wait(10)


def test_many_disarmed_deadlines_do_not_pile_up() -> None:
    dog = Watchdog()
    for _ in range(1000):
        dog.disarm(dog.arm(3600, lambda: None))
    assert len(dog._heap) <= 2 * len(dog._armed) + 65
