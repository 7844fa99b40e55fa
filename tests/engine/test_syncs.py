"""When scheduled syncs are due (cron read on the sync's wall clock) and which worker runs them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from engine.syncs import due_fire_ms, latest_fire_ms, next_fire_ms, owns_sync, sync_partition

MADRID = ZoneInfo("Europe/Madrid")


def ms(year: int, month: int, day: int, hour: int, minute: int, zone: ZoneInfo = MADRID) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=zone).timestamp() * 1000)


def test_a_daily_cron_fires_at_the_same_wall_time_across_the_spring_change_23_hours_apart() -> None:
    first = next_fire_ms("30 1 * * *", "Europe/Madrid", ms(2026, 3, 28, 12, 0))
    second = next_fire_ms("30 1 * * *", "Europe/Madrid", first)
    assert first == ms(2026, 3, 29, 1, 30)
    assert second == ms(2026, 3, 30, 1, 30)
    assert second - first == 23 * 3600 * 1000


def test_a_daily_cron_fires_25_hours_apart_across_the_autumn_change() -> None:
    first = next_fire_ms("0 12 * * *", "Europe/Madrid", ms(2026, 10, 24, 11, 0))
    second = next_fire_ms("0 12 * * *", "Europe/Madrid", first)
    assert (first, second) == (ms(2026, 10, 24, 12, 0), ms(2026, 10, 25, 12, 0))
    assert second - first == 25 * 3600 * 1000


def test_a_wall_time_skipped_by_the_spring_change_fires_an_hour_later_on_the_new_clock() -> None:
    fire = next_fire_ms("30 2 * * *", "Europe/Madrid", ms(2026, 3, 28, 12, 0))
    assert fire == ms(2026, 3, 29, 3, 30)


def test_a_wall_time_repeated_by_the_autumn_change_fires_once() -> None:
    first = next_fire_ms("30 2 * * *", "Europe/Madrid", ms(2026, 10, 24, 12, 0))
    assert datetime.fromtimestamp(first / 1000, UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    after_the_second_pass = first + 3600 * 1000 + 60_000  # 02:31 on the repeated hour
    assert due_fire_ms("30 2 * * *", "Europe/Madrid", first, after_the_second_pass) is None
    assert next_fire_ms("30 2 * * *", "Europe/Madrid", first) == ms(2026, 10, 26, 2, 30)


def test_a_per_minute_cron_inside_the_repeated_hour_still_finds_its_next_fire() -> None:
    inside = int(datetime(2026, 10, 25, 1, 10, tzinfo=UTC).timestamp() * 1000)  # 02:10, second pass
    assert next_fire_ms("* * * * *", "Europe/Madrid", inside) > inside


def test_the_latest_fire_counts_a_fire_exactly_at_now() -> None:
    now = ms(2026, 5, 4, 2, 0)
    assert latest_fire_ms("0 2 * * *", "Europe/Madrid", now) == now
    assert latest_fire_ms("0 2 * * *", "Europe/Madrid", now - 1) == ms(2026, 5, 3, 2, 0)


def test_a_sync_that_never_ran_is_due_at_once_for_its_latest_fire_time() -> None:
    now = ms(2026, 5, 4, 9, 17)
    assert due_fire_ms("0 2 * * *", "Europe/Madrid", None, now) == ms(2026, 5, 4, 2, 0)


def test_a_sync_is_due_only_when_a_fire_time_passed_since_its_last_run() -> None:
    last = ms(2026, 5, 4, 2, 0)
    assert due_fire_ms("0 2 * * *", "Europe/Madrid", last, ms(2026, 5, 5, 1, 59)) is None
    assert due_fire_ms("0 2 * * *", "Europe/Madrid", last, ms(2026, 5, 5, 2, 0)) == ms(2026, 5, 5, 2, 0)


def test_fire_times_missed_while_no_worker_ran_collapse_into_one_run_for_the_latest() -> None:
    last = ms(2026, 5, 1, 2, 0)
    assert due_fire_ms("0 2 * * *", "Europe/Madrid", last, ms(2026, 5, 4, 8, 0)) == ms(2026, 5, 4, 2, 0)


def test_the_cron_is_read_in_the_syncs_time_zone() -> None:
    fire = next_fire_ms("0 9 * * *", "America/New_York", ms(2026, 7, 1, 0, 0, ZoneInfo("UTC")))
    assert fire == ms(2026, 7, 1, 9, 0, ZoneInfo("America/New_York"))


def test_exactly_one_of_several_workers_owns_each_sync() -> None:
    workers = [{0, 1}, {2}, {3, 4, 5}]
    for sync_id in ("customers", "balances", "offers", "a", "zz-9"):
        owners = [owned for owned in workers if owns_sync(sync_id, 6, owned)]
        assert len(owners) == 1, sync_id


def test_a_syncs_partition_is_stable_and_spread_over_the_partitions() -> None:
    assert sync_partition("customers", 12) == sync_partition("customers", 12)
    assert len({sync_partition(f"sync-{i}", 12) for i in range(200)}) == 12
    assert sync_partition("customers", 1) == 0
