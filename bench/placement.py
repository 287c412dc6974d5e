"""Asset names for benchmarks that land on different book actors, so that every book actor works."""

from __future__ import annotations

import string
from itertools import product

from actors.config import ServiceConfig, book_actor_for


def assets_on_distinct_books(prefix: str, count: int, book_actor_count: int | None = None) -> list[str]:
    """`count` asset ids `prefix` + letters, spread over the book actors as evenly as routing allows.

    The default count is the service's default (`ServiceConfig`), which depends on the cores.
    """
    books = book_actor_count or ServiceConfig(data_dir=".").book_actor_count
    chosen: list[str] = []
    taken: dict[int, int] = {}
    for letters in product(string.ascii_uppercase, repeat=2):
        name = prefix + "".join(letters)
        book = book_actor_for(name, books)
        if taken.get(book, 0) <= min((taken.get(index, 0) for index in range(books)), default=0):
            chosen.append(name)
            taken[book] = taken.get(book, 0) + 1
            if len(chosen) == count:
                return chosen
    raise ValueError(f"could not spread {count} assets over {books} book actors")
