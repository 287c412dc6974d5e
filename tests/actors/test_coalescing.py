"""The coalescing queue: what the gateway and the shards send to one actor."""

from __future__ import annotations

import asyncio

import pytest
import ray

from actors.coalescing import CoalescingQueue


def test_items_submitted_while_a_call_is_under_way_leave_together_in_order_with_their_own_results():
    calls: list[list[int]] = []

    async def call(items):
        calls.append(list(items))
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    async def scenario():
        queue = CoalescingQueue(call, max_batch=3)
        return await asyncio.gather(*(queue.submit(item) for item in range(7)))

    assert asyncio.run(scenario()) == [item * 10 for item in range(7)]
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]  # queued before the first call left, at most 3 a call


def test_sent_items_go_in_order_one_call_in_flight_and_answers_reach_on_result():
    answers: list[list[str]] = []
    in_flight = 0
    most_in_flight = 0

    async def call(items):
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return [f"done {item}" for item in items]

    async def scenario():
        queue = CoalescingQueue(call, max_batch=2, on_result=answers.append)
        queue.send([1, 2, 3])
        queue.send([4])
        while sum(len(answer) for answer in answers) < 4:
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert [item for answer in answers for item in answer] == ["done 1", "done 2", "done 3", "done 4"]
    assert most_in_flight == 1


def test_an_eager_queue_starts_an_idle_call_within_send_and_queues_later_items_in_order():
    started: list[list[int]] = []  # the synchronous part of each call: where a Ray call leaves
    answered: list[int] = []

    async def scenario():
        gate = asyncio.get_running_loop().create_future()
        done = asyncio.Event()

        def call(items):
            started.append(list(items))

            async def answer():
                await gate
                return items
            return answer()

        def on_result(items):
            answered.extend(items)
            if len(answered) == 4:
                done.set()

        queue = CoalescingQueue(call, max_batch=10, on_result=on_result, eager=True)
        queue.send([1, 2])
        assert started == [[1, 2]]  # before the sender yields to its loop
        queue.send([3])
        queue.send([4])
        assert started == [[1, 2]]  # one call in flight: the others wait for it
        gate.set_result(None)
        await done.wait()

    asyncio.run(scenario())
    assert started == [[1, 2], [3, 4]] and answered == [1, 2, 3, 4]


def test_a_failed_call_fails_its_waiters_and_the_queue_serves_later_items():
    async def call(items):
        if 0 in items:
            raise RuntimeError("refused")
        return items

    async def scenario():
        queue = CoalescingQueue(call)
        with pytest.raises(RuntimeError, match="refused"):
            await queue.submit(0)
        return await queue.submit(5)

    assert asyncio.run(scenario()) == 5


def test_a_call_made_now_is_made_again_after_the_callee_restarts():
    from actors.retry import call_now_with_retry

    tries: list[str] = []
    forgotten: list[int] = []

    def call():
        tries.append("try")
        if len(tries) == 1:
            raise ValueError("not registered yet")  # what ray.get_actor raises during a restart

        async def answer():
            if len(tries) == 2:
                raise ray.exceptions.ActorUnavailableError("restarting", None)
            return "answered"
        return answer()

    async def scenario():
        pending = call_now_with_retry(call, lambda: forgotten.append(1))
        assert tries == ["try"]  # the first try left before anything was awaited
        return await pending

    assert asyncio.run(scenario()) == "answered"
    assert len(tries) == 3 and len(forgotten) == 2
