"""Benchmark: ``reconciler schedule``'s computation over many definitions, against the naive approach.

Not a test: it prints numbers. Run ``python bench/bench_schedule.py [--definitions N] [--schedules M]``.

(a) ``engine.schedule.build_report``: the week counted per distinct schedule
    (``contract.firings.week`` walks each cron once, however many definitions share it), the
    busiest minutes, the spread and every definition's next 3 firings;
(b) the naive week: one cronsim walk per definition over the seven days, counting per hour and
    per minute in dictionaries (what a first version would do).

Both count the same firings (checked). ``--schedules`` shapes are drawn at random, so fewer are
distinct. Target for (a): under 5 s for 10,000 definitions on a 2-core machine (measured 2.9 s on a
shared one; the spread's first version, on datetimes, took 13.6 s).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from cronsim import CronSim

from reconciler.contract import firings
from reconciler.engine import schedule as view


def schedules(count: int, distinct: int, *, seed: int = 7) -> dict[str, dict[str, list[int | str]]]:
    """``count`` definitions over ``distinct`` schedules, skewed so that a few are very popular
    (as real fleets crowd at 02:00)."""
    rng = random.Random(seed)
    shapes: list[dict[str, list[int | str]]] = []
    for _ in range(distinct):
        minute: list[int | str] = [rng.choice([0, 0, 0, 15, 30, 45, rng.randrange(60)])]
        hour: list[int | str] = ["*"] if rng.random() < 0.2 else [rng.choice([1, 2, 2, 2, 3, 6, rng.randrange(24)])]
        dow: list[int | str] = ["*"] if rng.random() < 0.7 else [rng.randrange(7)]
        shapes.append({"minute": minute, "hour": hour, "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": dow})
    weights = [1 / (i + 1) for i in range(distinct)]
    return {f"definition-{i:05d}": rng.choices(shapes, weights)[0] for i in range(count)}


def naive_week(found: dict[str, dict[str, list[int | str]]], first_day: date) -> tuple[Counter[tuple[int, int]], int]:
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=7)
    hours: Counter[tuple[int, int]] = Counter()
    minutes: Counter[datetime] = Counter()
    for schedule in found.values():
        for moment in CronSim(firings.to_cron(schedule), start - timedelta(seconds=1)):
            if moment >= end:
                break
            hours[((moment.date() - first_day).days, moment.hour)] += 1
            minutes[moment] += 1
    return hours, sum(hours.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--definitions", type=int, default=10_000)
    parser.add_argument("--schedules", type=int, default=300)
    args = parser.parse_args()
    found = schedules(args.definitions, args.schedules)
    first_day = date(2026, 3, 2)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    print(f"{len(found):,} definitions over {len({firings.to_cron(s) for s in found.values()})} distinct schedules")

    started = time.perf_counter()
    report = view.build_report(found, first_day=first_day, tz="UTC", now=now)
    grouped = time.perf_counter() - started
    started = time.perf_counter()
    hours, total = naive_week(found, first_day)
    naive = time.perf_counter() - started

    assert total == report.week.total, (total, report.week.total)
    assert all(report.week.hours[d][h] == hours[(d, h)] for d in range(7) for h in range(24))
    print(f"  (a) build_report (week, busiest, spread under {report.spread.limit}/min, next 3 each): "
          f"{grouped:.2f} s  ({report.week.total:,} firings; {len(report.spread.moves):,} moves, "
          f"{len(report.spread.crowded)} crowded minutes left)")
    print(f"  (b) naive week (one cron walk per definition, counting only):               {naive:.2f} s")
    print(f"  busiest minute: {report.busiest[0].count:,} definitions at {report.busiest[0].at:%a %H:%M}")


if __name__ == "__main__":
    main()
