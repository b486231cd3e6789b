"""Future: the one future type of the actor layer (actors/_future.py)."""

from __future__ import annotations

import queue
import threading
import time

import pykka
import pytest

from plasm.actors._future import Future as Latch


def test_a_value_is_got_any_number_of_times() -> None:
    latch = Latch()
    latch.set(42)
    assert [latch.get(), latch.get(timeout=0), latch.get(timeout=1)] == [42, 42, 42]


def test_get_waits_for_a_set_from_another_thread() -> None:
    latch = Latch()
    threading.Timer(0.05, latch.set, args=("late",)).start()
    started = time.monotonic()
    assert latch.get(timeout=10) == "late"
    assert time.monotonic() - started >= 0.04


def test_many_threads_waiting_all_wake() -> None:
    latch = Latch()
    got: list[int] = []
    waiters = [threading.Thread(target=lambda: got.append(latch.get(timeout=10))) for _ in range(5)]
    for waiter in waiters:
        waiter.start()
    latch.set(7)
    for waiter in waiters:
        waiter.join(timeout=10)
    assert got == [7] * 5


@pytest.mark.parametrize("timeout", [0, 0.02])
def test_an_unanswered_get_times_out(timeout: float) -> None:
    with pytest.raises(pykka.Timeout):
        Latch().get(timeout=timeout)


def test_an_exception_is_raised_with_its_traceback_every_time() -> None:
    latch = Latch()
    try:
        raise KeyError("gone")
    except KeyError:
        latch.set_exception()
    for _ in range(2):
        with pytest.raises(KeyError, match="gone") as raised:
            latch.get(timeout=1)
        assert raised.tb is not None


def test_an_exception_given_as_a_bare_type_is_instantiated() -> None:
    latch = Latch()
    latch.set_exception((ValueError, None, None))
    with pytest.raises(ValueError):
        latch.get(timeout=1)


def test_a_second_answer_is_refused() -> None:
    latch = Latch()
    latch.set(1)
    with pytest.raises(queue.Full):
        latch.set(2)
    with pytest.raises(queue.Full):
        latch.set_exception((ValueError, ValueError("x"), None))
    assert latch.get() == 1


def test_map_works_through_pykka_get_hooks() -> None:
    latch = Latch()
    doubled = latch.map(lambda value: value * 2)
    latch.set(21)
    assert doubled.get(timeout=1) == 42


def test_a_callback_runs_once_when_the_future_is_answered_in_the_answering_thread() -> None:
    future = Latch()
    seen: list[tuple[object, str]] = []
    future.add_done_callback(
        lambda f: seen.append((f.get(timeout=0), threading.current_thread().name))
    )
    assert seen == []
    answering = threading.Thread(target=future.set, args=(5,), name="answerer")
    answering.start()
    answering.join(10)
    assert seen == [(5, "answerer")]


def test_a_callback_added_after_the_answer_runs_at_once() -> None:
    future = Latch()
    future.set("x")
    seen: list[object] = []
    future.add_done_callback(lambda f: seen.append(f.get(timeout=0)))
    assert seen == ["x"]


def test_a_failing_callback_does_not_stop_the_others_or_the_answer() -> None:
    future = Latch()
    seen: list[int] = []
    future.add_done_callback(lambda f: 1 / 0)  # type: ignore[arg-type,return-value]
    future.add_done_callback(lambda f: seen.append(1))
    future.set(None)
    assert seen == [1]
    assert future.done


def test_try_set_answers_only_an_unanswered_future() -> None:
    future = Latch()
    assert future.try_set(1)
    assert not future.try_set(2)
    assert not future.try_set_exception(KeyError("late"))
    assert future.get(timeout=0) == 1
    assert future.exception() is None


def test_an_exception_answers_the_callbacks_and_get_raises_it() -> None:
    future = Latch()
    seen: list[object] = []
    future.add_done_callback(seen.append)
    try:
        raise ValueError("the job failed")
    except ValueError as exc:
        future.set_exception((type(exc), exc, exc.__traceback__))
    assert seen == [future]
    assert isinstance(future.exception(), ValueError)
    with pytest.raises(ValueError, match="the job failed"):
        future.get(timeout=0)
