"""The one reconnect rule the three long connections share (bot/channels/reconnect.py)."""

import pytest

from bot.channels.reconnect import JITTER, Backoff


def test_pauses_double_up_to_the_cap_and_start_over_after_a_served_connection() -> None:
    low = Backoff(1.0, 8.0, rng=lambda: 0.0)
    assert [low.next_pause() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low.reset()
    assert low.next_pause() == 1.0


def test_jitter_stretches_a_pause_by_at_most_a_quarter() -> None:
    high = Backoff(2.0, 60.0, rng=lambda: 0.999)
    first, second = high.next_pause(), high.next_pause()
    assert 2.0 < first < 2.0 * (1 + JITTER) and 4.0 < second < 4.0 * (1 + JITTER)
    real = Backoff(1.0, 60.0)  # the default source of randomness stays inside the same bounds
    pauses = [real.next_pause() for _ in range(10)]
    assert all(b <= p < b * (1 + JITTER) for p, b in zip(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60], strict=True))


def test_a_backoff_that_could_never_pause_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(5.0, 1.0)
