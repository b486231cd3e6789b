"""CallbackFuture: a pykka future that calls back when answered (no thread blocks on it)."""

from __future__ import annotations

import threading

import pytest

from plasm.actors.network import CallbackFuture


def test_a_callback_added_before_the_answer_runs_in_the_answering_thread() -> None:
    future, seen = CallbackFuture(), []
    future.add_done_callback(lambda f: seen.append((f.get(timeout=0), threading.get_ident())))
    answering = threading.Thread(target=future.set, args=("ran",))
    answering.start()
    answering.join(timeout=5)
    assert seen == [("ran", answering.ident)]


def test_a_callback_added_after_the_answer_runs_at_once() -> None:
    future, seen = CallbackFuture(), []
    future.set(42)
    future.add_done_callback(lambda f: seen.append(f.get(timeout=0)))
    assert seen == [42]


def test_an_exception_answers_the_callbacks_and_get_raises_it() -> None:
    future, seen = CallbackFuture(), list[CallbackFuture]()
    future.add_done_callback(seen.append)
    try:
        raise ValueError("the job failed")
    except ValueError as exc:
        future.set_exception((type(exc), exc, exc.__traceback__))
    assert seen == [future]
    with pytest.raises(ValueError, match="the job failed"):
        future.get(timeout=0)


def test_a_failing_callback_neither_stops_the_others_nor_the_answering_thread() -> None:
    future, seen = CallbackFuture(), []

    def broken(_: CallbackFuture) -> None:
        raise RuntimeError("bug in a callback")

    future.add_done_callback(broken)
    future.add_done_callback(lambda f: seen.append(f.get(timeout=0)))
    future.set("value")
    assert seen == ["value"]
    assert future.get(timeout=0) == "value"
