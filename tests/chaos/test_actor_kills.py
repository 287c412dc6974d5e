"""SIGKILL of single actor processes while clients trade over HTTP; the service lives on.

One service runs throughout, with two account shards and two book actors, an
asset on each book and users on each shard. Each cycle clients place and cancel
orders and the admin creates users, on several threads; after a random number
of answers one actor's worker process is killed with SIGKILL: an account shard,
a book actor or the registry. Its process is found by its title (Ray names an
actor's worker `ray::<class>`) and by the journal it holds open, among the
processes this service started. Ray restarts the actor from its journal.

A cycle waits until a new process holds that journal and requests sent after
that have succeeded through the restarted actor, then stops the clients and
checks what `tests.chaos.checks` checks, and that every user the admin was told
was created can authenticate. Every answer, during the kill too, is a 2xx or an
error in the envelope, and no 5xx but 503.
"""

from __future__ import annotations

import random
import time

from tests.chaos.checks import Acknowledged, check_service
from tests.chaos.load import BOOKS, LAYOUT, SHARDS, Answers, Market, check_created_users, running_clients
from tests.chaos.workers import actor_processes, kill_actor, wait_for_restart
from tests.e2e.api import Api

# Each kind of actor at least once; shards and books both by index.
PLAN = ["shard-0", "book-0", "registry", "shard-1", "book-1", "shard-0"]
SUCCESSES_AFTER_RESTART = 3
RESTART_DEADLINE = 90.0


def test_kill_9_of_single_actors_under_load_keeps_serving_and_loses_nothing_acknowledged(service_factory):
    service = service_factory(environment=LAYOUT)
    service.start()
    api = Api(service.base_url, service.admin_token)
    market = Market.create(api)
    assert set(actor_processes(service)) == {"registry", *(f"shard-{i}" for i in range(SHARDS)),
                                             *(f"book-{i}" for i in range(BOOKS))}
    acknowledged = Acknowledged()
    answers = Answers()
    rng = random.Random(6)
    try:
        for cycle, stream in enumerate(PLAN):
            with running_clients(service.base_url, service.admin_token, market, acknowledged, answers,
                                 seed=rng.random()):
                target = acknowledged.answers + rng.randint(5, 60)
                assert acknowledged.wait_for(target), \
                    f"cycle {cycle}: too few answers before the kill: {answers.problems[:5]}"
                victim = kill_actor(service, stream)
                wait_for_restart(service, stream, victim, RESTART_DEADLINE, answers.pause)
                restarted_at = time.monotonic()
                served = answers.wait_for_successes([stream], restarted_at, SUCCESSES_AFTER_RESTART,
                                                    RESTART_DEADLINE)
                assert served[stream] >= SUCCESSES_AFTER_RESTART, \
                    f"cycle {cycle}: only {served[stream]} requests succeeded through the restarted {stream}"
            assert not answers.problems, answers.problems[:10]
            check_service(api, market.users, market.asset_ids, acknowledged, market.deposited)
            check_created_users(api, answers.created_users)
        print(f"answers by status: {dict(answers.statuses)}; orders acknowledged: {len(acknowledged.orders)}")
    finally:
        api.close()
