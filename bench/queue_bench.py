"""The workshop queue under a full room: 100 participants against an upstream limited to 60 images a minute.

The server (in this process, over loopback HTTP) runs a fake upstream (stored pictures, 50 ms a
call, as a model at work) behind its fair queue with ``upstream_rate`` 60 images per "minute" and
8 calls at once. Time is compressed 50 times, so a minute lasts 1.2 s and the run stays short;
every figure is given in the run's own seconds. Each of
the 100 participants (a thread with its own token and HTTP session) asks again as soon as an answer
comes: 90 ask for one image at a time, 10 for ten (the greedy loop that would starve a room served
first come, first served). Shares are images received per participant in the steady part of the
run (after the first queue round); a queue round is the time the upstream takes to give every
participant one image (100 images at 60 per minute). A ten-image call takes ten rounds of its
participant's turns, so shares are even over runs of tens of rounds, not within one: the quick run
(8 rounds) is too short for them. Waits are each call's time from sending to the answer.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

import requests

from .report import RATIO, Figure, Goal, Options, say

PARTICIPANTS, GREEDY, GREEDY_N = 100, 10, 10
RATE_IMAGES, MINUTE_S = 60, 1.2  # 60 images a minute, the minute compressed 50 times
UPSTREAM_DELAY_S = 0.05
CONCURRENCY = 8


def run(options: Options) -> list[Figure]:
    from ipyimagegen.server import ServerThread, TokenStore, make_app
    from ipyimagegen.server.tokens import Rate

    from .fixtures import InstantBackend, photo_like_png

    photo_like_png(256)  # made before the first call, not during it
    duration = options.pick(16.0, 70.0)  # the full run spans three ten-image calls' turns (10 rounds each)
    round_s = PARTICIPANTS / RATE_IMAGES * MINUTE_S
    received: dict[str, list[tuple[float, int]]] = defaultdict(list)  # participant -> (answered at, images)
    waits: list[tuple[float, float, int]] = []  # (sent at, wait, images)
    refused = Counter[str]()
    lock = threading.Lock()
    stop = threading.Event()
    with TemporaryDirectory(prefix="ipyimagegen-bench-queue-") as folder:
        store = TokenStore.in_dir(Path(folder))
        tokens = [(f"p{i:03d}", store.create(f"p{i:03d}")[0]) for i in range(PARTICIPANTS)]
        app = make_app(
            InstantBackend(delay_s=UPSTREAM_DELAY_S),
            tokens=store,
            max_concurrency=CONCURRENCY,
            upstream_rate=Rate(RATE_IMAGES, MINUTE_S),
            request_timeout=600,
        )
        with ServerThread(app) as server:
            url = server.base_url + "/images/generations"
            began = time.monotonic()

            def participant(index: int, name: str, token: str) -> None:
                n = GREEDY_N if index < GREEDY else 1
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {token}"
                body = {"model": "dall-e-2", "prompt": f"a fox, by {name}", "size": "256x256", "n": n}
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        answer = session.post(url, json=body, timeout=120)
                    except requests.RequestException as exc:
                        with lock:
                            refused[type(exc).__name__] += 1
                        continue
                    done = time.monotonic()
                    with lock:
                        if answer.status_code == 200:
                            received[name].append((done - began, len(answer.json()["data"])))
                            waits.append((sent - began, done - sent, n))
                        else:
                            refused[str(answer.status_code)] += 1
                session.close()

            threads = [
                threading.Thread(target=participant, args=(i, name, token), daemon=True)
                for i, (name, token) in enumerate(tokens)
            ]
            for thread in threads:
                thread.start()
            time.sleep(duration)
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
    steady_from, steady_to = round_s, duration
    shares = {
        name: sum(images for at, images in received.get(name, []) if steady_from <= at < steady_to)
        for name, _token in tokens
    }
    greedy_names = {name for name, _ in tokens[:GREEDY]}
    modest = [shares[name] for name in shares if name not in greedy_names]
    greedy = [shares[name] for name in greedy_names]
    everyone = list(shares.values())
    steady_waits = sorted(wait for sent, wait, _n in waits if sent >= steady_from)
    p95_wait = steady_waits[int(len(steady_waits) * 0.95)] if steady_waits else float("inf")
    total = sum(images for got in received.values() for at, images in got if at < duration)
    say(
        f"method: {PARTICIPANTS} participants ({GREEDY} asking {GREEDY_N} images a call, the rest 1), each asking "
        f"again at once; a fake upstream ({UPSTREAM_DELAY_S * 1000:.0f} ms a call); upstream_rate {RATE_IMAGES} "
        f"images per {MINUTE_S:g} s (a minute compressed 50x), {CONCURRENCY} calls at once; {duration:g} s; "
        f"a queue round = {round_s:g} s"
    )
    say(
        f"{total} images answered in {duration:g} s ({total / duration * MINUTE_S:.1f} per compressed minute; "
        f"the limit is {RATE_IMAGES}, after a first burst of {RATE_IMAGES}); refused or failed calls: "
        f"{dict(refused) or 'none'}"
    )
    say(
        f"images per participant in the steady part: min {min(everyone)}, median {statistics.median(everyone):g}, "
        f"max {max(everyone)}; one-image participants median {statistics.median(modest):g}, ten-image "
        f"participants median {statistics.median(greedy):g}"
    )
    say(
        f"waits: median {statistics.median(steady_waits):.2f} s, p95 {p95_wait:.2f} s "
        f"({p95_wait / round_s:.2f} queue rounds)"
    )
    return [
        Figure(
            f"workshop queue: images per participant, most vs fewest ({PARTICIPANTS} in the room)",
            float(max(everyone)),
            "images",
            Goal(1.5, on=RATIO, compare="<="),
            float(max(1, min(everyone))),
        ),
        Figure(
            "workshop queue: p95 wait vs two queue rounds",
            p95_wait,
            "s",
            Goal(1.0, on=RATIO, compare="<="),
            2 * round_s,
        ),
    ]
