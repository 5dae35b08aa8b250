from __future__ import annotations

from ray_enterprise.config.sources import TokenLease


def test_a_token_that_never_expires_needs_nothing() -> None:
    assert TokenLease.granted(0, 0, renewable=False).action(1e9) == "ok"


def test_renew_in_the_last_third_of_the_lease() -> None:
    lease = TokenLease.granted(30, 1000, renewable=True)
    assert lease.expires_at == 1030
    assert lease.action(1019) == "ok"
    assert lease.action(1021) == "renew"


def test_margin_brings_renewal_forward_for_long_poll_intervals() -> None:
    lease = TokenLease.granted(30, 0, renewable=True, margin=15)
    assert lease.action(14) == "ok"
    assert lease.action(16) == "renew"


def test_a_capped_renewal_means_log_in_again_before_expiry() -> None:
    lease = TokenLease.granted(30, 0, renewable=True)
    capped = lease.renewed(granted=10, now=25)
    assert capped.capped and capped.expires_at == 35
    assert capped.action(26) == "relogin"
    full = lease.renewed(granted=30, now=25)
    assert not full.capped and full.expires_at == 55 and full.action(26) == "ok"


def test_expired_or_unrenewable_tokens_log_in_again() -> None:
    assert TokenLease.granted(30, 0, renewable=True).action(31) == "relogin"
    assert TokenLease.granted(30, 0, renewable=False).action(25) == "relogin"
