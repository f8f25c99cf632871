from bot.throttle import UserRateLimiter


def test_sliding_window_per_user() -> None:
    now = [0.0]
    limiter = UserRateLimiter(limit=3, window=10.0, clock=lambda: now[0])
    assert [limiter.allow(1) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow(2)  # other users are not affected
    now[0] = 9.9
    assert not limiter.allow(1)
    now[0] = 10.0  # the first three requests leave the window
    assert [limiter.allow(1) for _ in range(4)] == [True, True, True, False]


def test_idle_senders_are_forgotten() -> None:
    from bot.throttle import SWEEP_EVERY

    now = [0.0]
    limiter = UserRateLimiter(limit=3, window=10.0, clock=lambda: now[0])
    for user in range(SWEEP_EVERY - 1):
        limiter.allow(user)
    assert len(limiter) == SWEEP_EVERY - 1
    now[0] = 60.0  # a minute later every one of them is idle
    limiter.allow(-5)  # the sweep runs on this request
    assert len(limiter) == 1
