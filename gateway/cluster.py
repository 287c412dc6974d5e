"""`order-service actors`, `layout` and `node-labels`: set up and inspect the actor tier on a Ray cluster.

On a cluster the actor tier outlives any gateway: `actors` creates the detached
actors (each pinned by its label to the node that holds its journal, see
actors/remote.py), records the layout and the admin token's hash in the cluster,
and waits until every actor that has a node is up. `layout` prints where each
actor runs, or what it waits for. `node-labels` prints the `ray start --labels`
value for a node that holds the given journals. Gateways (`serve` with
RAY_ADDRESS) then attach from anywhere.
"""

from __future__ import annotations

import json
import sys
import time

from gateway.settings import Settings

# How often `actors` looks again while it waits for the actors to come up.
POLL_SECONDS = 0.5


def node_labels(namespace: str, streams: list[str]) -> str:
    """The `ray start --labels` value of a node holding these streams' journals."""
    from actors.config import ServiceConfig
    from actors.remote import PLACED

    config = ServiceConfig(data_dir=".", shard_count=1, book_actor_count=1, namespace=namespace)
    return ",".join(f"{config.placement_label(stream)}={PLACED}" for stream in streams)


def _attach(settings: Settings):
    """Join the cluster at RAY_ADDRESS and return the configuration it was set up with."""
    from actors.remote import recorded_cluster_layout, start_ray

    start_ray(settings.data_dir, settings.namespace)
    return settings.service_config(recorded_cluster_layout(settings.namespace))


def _print_layout(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'actor':<10} {'state':<16} {'node':<30} label")
    for row in rows:
        if row["node_id"]:
            where = f"{row['node_address']} {row['node_id'][:12]}"
        elif row["labelled_nodes"]:
            where = f"(its node {row['labelled_nodes'][0][:12]})"
        else:
            where = "(no live node has its label)"
        print(f"{row['stream']:<10} {row['state']:<16} {where:<30} {row['label']}")


def actors(wait_seconds: float, as_json: bool) -> int:
    """Create (or find) the actor tier on the cluster at RAY_ADDRESS; wait for it; print where it runs."""
    from actors.config import check_layout
    from actors.remote import LayoutMismatch, create_actors, placement, record_in_cluster
    from gateway.cli import admin_token

    settings = Settings.from_environment()
    if not settings.ray_address:
        print("order-service: set RAY_ADDRESS to the cluster's head (`ray start --head` prints it)", file=sys.stderr)
        return 2
    config = _attach(settings)
    try:
        check_layout(config)
        record_in_cluster(config, admin_token(settings))
    except (ValueError, LayoutMismatch) as error:
        print(f"order-service: {error}", file=sys.stderr)
        return 2
    rows = placement(config)
    homeless = [row for row in rows if not row["labelled_nodes"]]
    for row in homeless:
        print(f"order-service: no live node carries {row['label']}; {row['stream']} waits for one "
              f"(start its node with `ray start --labels {row['label']}=true ...`)", file=sys.stderr)
    create_actors(config)
    deadline = time.monotonic() + wait_seconds
    while True:
        rows = placement(config)
        waiting = [row for row in rows if row["state"] != "ALIVE" and row["labelled_nodes"]]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)  # polls the GCS with a deadline: Ray offers no event to wait on here
    _print_layout(rows, as_json)
    pending = [row["stream"] for row in rows if row["state"] != "ALIVE"]
    if pending:
        print(f"order-service: not up yet: {', '.join(pending)}", file=sys.stderr)
        return 1
    return 0


def layout(as_json: bool) -> int:
    """Print which actor runs on which node of the cluster at RAY_ADDRESS, or what it waits for."""
    from actors.remote import placement

    settings = Settings.from_environment()
    if not settings.ray_address:
        print("order-service: set RAY_ADDRESS to the cluster's head", file=sys.stderr)
        return 2
    _print_layout(placement(_attach(settings)), as_json)
    return 0


def add_commands(commands) -> None:
    """Add `actors`, `layout` and `node-labels` to the CLI's subcommands."""
    actors_parser = commands.add_parser(
        "actors", help="create the actor tier on the Ray cluster at RAY_ADDRESS (each actor on the node "
                       "labelled for it), record its layout, wait until it is up and print where it runs")
    actors_parser.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                               help="how long to wait for the actors that have a node (default 120)")
    actors_parser.add_argument("--json", action="store_true", help="print the layout as JSON")
    layout_parser = commands.add_parser(
        "layout", help="print which actor of the cluster at RAY_ADDRESS runs on which node, or what it waits for")
    layout_parser.add_argument("--json", action="store_true", help="print the layout as JSON")
    labels_parser = commands.add_parser(
        "node-labels", help="print the `ray start --labels` value for a node holding these actors' journals")
    labels_parser.add_argument("streams", nargs="+", metavar="ACTOR", help="registry, shard-N or book-N")
    labels_parser.add_argument("--namespace", default=None, help="default: ORDER_SERVICE_NAMESPACE or order-service")


def run(arguments) -> int | None:
    """Run one of these commands, or return None if the arguments name another."""
    if arguments.command == "actors":
        return actors(arguments.wait, arguments.json)
    if arguments.command == "layout":
        return layout(arguments.json)
    if arguments.command == "node-labels":
        print(node_labels(arguments.namespace or Settings.from_environment().namespace, arguments.streams))
        return 0
    return None
