"""Identifiers, timestamps and generated names in the shapes DataRobot uses on the wire.

Ids are 24 hex digits like MongoDB ObjectIds (4-byte time, 5 random bytes, 3-byte counter), so
they sort roughly by creation and pass the schemas' id pattern. Timestamps carry microseconds
and a ``Z``; "never happened" is the API's 1900-01-01 sentinel, not null, because the SDK's
parser rejects null for those fields.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from datetime import UTC, datetime

NEVER = "1900-01-01T00:00:00.000000Z"

_counter = itertools.count(secrets.randbelow(1 << 24))
_lock = threading.Lock()
_random = os.urandom(5)


def new_id() -> str:
    with _lock:
        count = next(_counter) & 0xFFFFFF
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_random.hex()}{count:06x}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``2024-05-01T12:00:00.123456Z``: always microseconds, always UTC with ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "crimson", "daring", "eager", "fancy", "gentle", "golden",
    "happy", "jolly", "keen", "lively", "lucky", "mellow", "nimble", "proud", "quiet", "rapid", "shy",
    "silver", "steady", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)
_PLACES = (
    "alps", "bay", "canyon", "cape", "coast", "delta", "desert", "dune", "fjord", "forest", "glacier",
    "grove", "harbor", "island", "lagoon", "lake", "meadow", "mesa", "oasis", "prairie", "reef", "ridge",
    "river", "savanna", "summit", "tundra", "valley", "volcano",
)
_ANIMALS = (
    "badger", "beaver", "bison", "camel", "crane", "dolphin", "eagle", "falcon", "ferret", "gecko", "heron",
    "ibex", "jaguar", "koala", "lemur", "lynx", "marmot", "otter", "owl", "panda", "puffin", "quokka",
    "raven", "salmon", "tapir", "walrus", "wombat", "yak", "zebra",
)


def generated_name(*, suffix: bool = False) -> str:
    """``adjective_place_animal``; with ``suffix`` a short random tail, used after a collision."""
    name = "_".join(secrets.choice(words) for words in (_ADJECTIVES, _PLACES, _ANIMALS))
    return f"{name}_{secrets.token_hex(3)}" if suffix else name
