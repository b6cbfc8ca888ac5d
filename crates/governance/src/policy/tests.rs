//! Budget, window and bucket arithmetic on a fake clock, to the nanosecond.

use proptest::prelude::*;

use super::*;

const SECOND: u64 = 1_000_000_000;
const ALICE: Principal = Principal::Token(1);

/// A policy where only the budget limits (the bucket never runs dry in these tests).
fn budget_only(budget_tokens: u64, window_ns: u64) -> Policy {
    Policy::new(Limits { budget_tokens, window_ns, rate_per_second: u64::MAX, burst: u64::MAX, ..Limits::DEFAULT })
        .unwrap()
}

/// A policy where only the rate limits.
fn rate_only(rate_per_second: u64, burst: u64) -> Policy {
    Policy::new(Limits { budget_tokens: u64::MAX, window_ns: u64::MAX, rate_per_second, burst, ..Limits::DEFAULT })
        .unwrap()
}

#[test]
fn a_request_over_the_remainder_is_cut_and_an_empty_window_refuses_with_its_reset_time() {
    let mut policy = budget_only(100, 1_000);
    let first = policy.request(ALICE, 60, 5).unwrap();
    assert_eq!(
        first,
        Grant {
            id: 1,
            principal: ALICE,
            requested_tokens: 60,
            granted_tokens: 60,
            cut: false,
            remaining_tokens: 40,
            window_start_ns: 5,
            window_reset_ns: 1_005,
        }
    );
    let second = policy.request(ALICE, 60, 500).unwrap();
    assert_eq!((second.id, second.granted_tokens, second.cut, second.remaining_tokens), (2, 40, true, 0));
    assert_eq!(
        policy.request(ALICE, 1, 1_004),
        Err(PolicyError::BudgetExhausted { remaining_tokens: 0, budget_tokens: 100, window_reset_ns: 1_005 })
    );
    // The next window starts exactly at the reset time, with the whole budget.
    let third = policy.request(ALICE, 60, 1_005).unwrap();
    assert_eq!(
        (third.granted_tokens, third.remaining_tokens, third.window_start_ns, third.window_reset_ns),
        (60, 40, 1_005, 2_005)
    );
    let counters = policy.status(ALICE, 1_005).counters;
    assert_eq!(
        counters,
        Counters { requests: 4, allowed: 3, cut: 1, refused_budget: 1, tokens_granted: 160, ..Counters::default() }
    );
}

#[test]
fn windows_stay_aligned_to_the_first_one_however_long_the_gap() {
    let mut policy = budget_only(10, 1_000);
    policy.request(ALICE, 10, 5).unwrap();
    // 3,500 ns later: windows began at 5, 1,005, 2,005, 3,005.
    let grant = policy.request(ALICE, 4, 3_505).unwrap();
    assert_eq!((grant.window_start_ns, grant.window_reset_ns, grant.remaining_tokens), (3_005, 4_005, 6));
    let status = policy.status(ALICE, 4_004);
    assert_eq!((status.window_start_ns, status.window_used_tokens, status.remaining_tokens), (3_005, 4, 6));
    // Reading the status changes nothing; at 4,005 a new window is whole.
    let status = policy.status(ALICE, 4_005);
    assert_eq!((status.window_start_ns, status.window_used_tokens, status.remaining_tokens), (4_005, 0, 10));
    // A clock reading before the window began counts as inside it.
    assert_eq!(policy.request(ALICE, 100, 3_000).unwrap().granted_tokens, 6);
}

#[test]
fn completion_returns_unused_tokens_to_the_window_they_came_from() {
    let mut policy = budget_only(100, 1_000);
    let grant = policy.request(ALICE, 80, 0).unwrap();
    assert_eq!(
        policy.complete(grant.id, 81, 10),
        Err(PolicyError::UsedExceedsGrant { used_tokens: 81, granted_tokens: 80 })
    );
    assert_eq!(policy.open_grants(), &[grant]);
    assert_eq!(policy.complete(grant.id, 30, 10), Ok(50));
    assert_eq!(policy.status(ALICE, 10).remaining_tokens, 70);
    assert_eq!(policy.complete(grant.id, 30, 10), Err(PolicyError::UnknownGrant { id: grant.id }));
    assert_eq!(policy.complete(99, 0, 10), Err(PolicyError::UnknownGrant { id: 99 }));
    // A grant completed after its window ended gives nothing back to the new one.
    let late = policy.request(ALICE, 70, 20).unwrap();
    assert_eq!(late.remaining_tokens, 0);
    assert_eq!(policy.complete(late.id, 0, 1_000), Ok(0));
    assert_eq!(policy.status(ALICE, 1_000).remaining_tokens, 100);
    let counters = policy.status(ALICE, 1_000).counters;
    assert_eq!((counters.completed, counters.tokens_granted, counters.tokens_used), (2, 150, 30));
    assert!(policy.open_grants().is_empty());
}

#[test]
fn the_bucket_allows_a_burst_then_refills_at_the_rate_with_exact_retry_after() {
    let mut policy = rate_only(2, 3);
    for _ in 0..3 {
        policy.request(ALICE, 1, 0).unwrap();
    }
    assert_eq!(policy.request(ALICE, 1, 0), Err(PolicyError::RateLimited { retry_after_ns: SECOND / 2 }));
    assert_eq!(policy.request(ALICE, 1, SECOND / 2 - 1), Err(PolicyError::RateLimited { retry_after_ns: 1 }));
    policy.request(ALICE, 1, SECOND / 2).unwrap();
    assert_eq!(policy.request(ALICE, 1, SECOND / 2), Err(PolicyError::RateLimited { retry_after_ns: SECOND / 2 }));
    // Ten seconds idle fill the bucket to its burst, not beyond.
    assert_eq!(policy.status(ALICE, 10 * SECOND).bucket_requests, 3);
    for _ in 0..3 {
        policy.request(ALICE, 1, 10 * SECOND).unwrap();
    }
    assert!(policy.request(ALICE, 1, 10 * SECOND).is_err());
    let counters = policy.status(ALICE, 10 * SECOND).counters;
    assert_eq!((counters.requests, counters.allowed, counters.refused_rate), (11, 7, 4));
}

#[test]
fn retry_after_rounds_up_to_the_next_whole_nanosecond() {
    let mut policy = rate_only(3, 1);
    policy.request(ALICE, 1, 0).unwrap();
    // 10^9 / 3 = 333,333,333.3 ns.
    assert_eq!(policy.request(ALICE, 1, 0), Err(PolicyError::RateLimited { retry_after_ns: 333_333_334 }));
    // After 100 ns, 300 of the 10^9 units are back: (10^9 - 300) / 3 = 333,333,233.3.
    assert_eq!(policy.request(ALICE, 1, 100), Err(PolicyError::RateLimited { retry_after_ns: 333_333_234 }));
    assert!(policy.request(ALICE, 1, 333_333_333).is_err());
    assert!(policy.request(ALICE, 1, 333_333_334).is_ok());
}

#[test]
fn a_refused_request_takes_nothing_from_the_bucket_or_the_budget() {
    let mut policy = Policy::new(Limits { budget_tokens: 1, rate_per_second: 1, burst: 2, ..Limits::DEFAULT }).unwrap();
    policy.request(ALICE, 5, 0).unwrap();
    for _ in 0..5 {
        assert!(matches!(policy.request(ALICE, 5, 0), Err(PolicyError::BudgetExhausted { .. })));
    }
    assert_eq!(policy.request(ALICE, 0, 0), Err(PolicyError::ZeroTokensRequested));
    let status = policy.status(ALICE, 0);
    assert_eq!((status.bucket_requests, status.window_used_tokens), (1, 1));
    assert_eq!(
        status.counters,
        Counters {
            requests: 7,
            allowed: 1,
            cut: 1,
            refused_budget: 5,
            refused_other: 1,
            tokens_granted: 1,
            ..Counters::default()
        }
    );
}

#[test]
fn settings_of_zero_are_refused_and_change_nothing() {
    assert_eq!(
        Policy::new(Limits { burst: 0, ..Limits::DEFAULT }).unwrap_err(),
        PolicyError::InvalidSetting { setting: Setting::Burst, value: 0 }
    );
    let mut policy = Policy::new(Limits::DEFAULT).unwrap();
    assert_eq!(
        policy.set_budget(ALICE, 0, SECOND, 0),
        Err(PolicyError::InvalidSetting { setting: Setting::BudgetTokens, value: 0 })
    );
    assert_eq!(
        policy.set_budget(ALICE, 10, 0, 0),
        Err(PolicyError::InvalidSetting { setting: Setting::WindowNs, value: 0 })
    );
    assert_eq!(
        policy.set_rate(ALICE, 0, 5, 0),
        Err(PolicyError::InvalidSetting { setting: Setting::RatePerSecond, value: 0 })
    );
    assert_eq!(policy.set_rate(ALICE, 5, 0, 0), Err(PolicyError::InvalidSetting { setting: Setting::Burst, value: 0 }));
    assert_eq!(
        policy.set_model_limit(ALICE, 0, 0),
        Err(PolicyError::InvalidSetting { setting: Setting::MaxModelBytes, value: 0 })
    );
    assert_eq!(policy.limits(ALICE), Limits::DEFAULT);
    assert!(policy.statuses(0).is_empty(), "a refused setting leaves no state behind");
}

#[test]
fn limits_of_u64_max_work_without_overflow() {
    let max = u64::MAX;
    let mut policy = Policy::new(Limits::DEFAULT).unwrap();
    policy.set_budget(ALICE, max, max, 0).unwrap();
    policy.set_rate(ALICE, max, max, 0).unwrap();
    policy.set_model_limit(ALICE, max, 0).unwrap();
    assert_eq!(
        policy.limits(ALICE),
        Limits { budget_tokens: max, window_ns: max, rate_per_second: max, burst: max, max_model_bytes: max }
    );
    let grant = policy.request(ALICE, max, 0).unwrap();
    assert_eq!((grant.granted_tokens, grant.remaining_tokens, grant.window_reset_ns), (max, 0, max));
    assert_eq!(
        policy.request(ALICE, 1, max - 1),
        Err(PolicyError::BudgetExhausted { remaining_tokens: 0, budget_tokens: max, window_reset_ns: max })
    );
    // At u64::MAX ns the (only) second window begins.
    let grant = policy.request(ALICE, max, max).unwrap();
    assert_eq!((grant.window_start_ns, grant.granted_tokens, grant.window_reset_ns), (max, max, max));
    assert_eq!(policy.check_model_size(ALICE, max), Ok(()));
    let status = policy.status(ALICE, max);
    // The bucket refilled to its burst by u64::MAX ns, then gave one request.
    assert_eq!(status.bucket_requests, max - 1);
    assert_eq!(status.counters.tokens_granted, max, "the counter saturates rather than wrapping");

    // The smallest rate, 1 a second, with a burst of 1: retry-after is a whole second.
    let mut slow = Policy::new(Limits::DEFAULT).unwrap();
    slow.set_rate(ALICE, 1, 1, 0).unwrap();
    slow.request(ALICE, 1, 0).unwrap();
    assert_eq!(slow.request(ALICE, 1, 0), Err(PolicyError::RateLimited { retry_after_ns: SECOND }));
}

#[test]
fn changing_limits_keeps_what_was_charged_and_what_was_refilled() {
    let mut policy =
        Policy::new(Limits { budget_tokens: 100, window_ns: 1_000, rate_per_second: 1, burst: 10, ..Limits::DEFAULT })
            .unwrap();
    policy.request(ALICE, 80, 0).unwrap();
    // Lowering the budget below what the window used leaves it overdrawn: visible, and nothing more granted.
    policy.set_budget(ALICE, 50, 1_000, 10).unwrap();
    let status = policy.status(ALICE, 10);
    assert_eq!((status.window_used_tokens, status.remaining_tokens), (80, 0));
    assert!(matches!(policy.request(ALICE, 1, 10), Err(PolicyError::BudgetExhausted { .. })));
    // Lowering the burst empties the bucket down to it.
    policy.set_rate(ALICE, 1, 4, 10).unwrap();
    assert_eq!(policy.status(ALICE, 10).bucket_requests, 4);
    assert_eq!(policy.check_model_size(ALICE, 1 << 20), Ok(()));
    policy.set_model_limit(ALICE, 1_000, 10).unwrap();
    assert_eq!(
        policy.check_model_size(ALICE, 1_001),
        Err(PolicyError::ModelTooLarge { bytes: 1_001, max_model_bytes: 1_000 })
    );
    // Other principals keep the defaults.
    assert_eq!(policy.limits(Principal::Console), policy.defaults());
}

#[test]
fn principals_and_open_grants_are_bounded() {
    let mut policy = budget_only(u64::MAX, SECOND);
    for id in 0..MAX_OPEN_GRANTS as u32 {
        policy.request(Principal::Agent(id), 1, 0).unwrap();
    }
    assert_eq!(policy.request(ALICE, 1, 0), Err(PolicyError::TooManyOpenGrants));
    assert_eq!(policy.status(ALICE, 0).counters.refused_other, 1);
    let open: Vec<u64> = policy.open_grants().iter().map(|grant| grant.id).collect();
    for id in open {
        policy.complete(id, 1, 0).unwrap();
    }
    for id in MAX_OPEN_GRANTS as u32..MAX_PRINCIPALS as u32 - 1 {
        policy.set_model_limit(Principal::Agent(id), 5, 0).unwrap();
    }
    assert_eq!(policy.statuses(0).len(), MAX_PRINCIPALS);
    assert_eq!(policy.request(Principal::Console, 1, 0), Err(PolicyError::TooManyPrincipals));
    assert_eq!(policy.set_budget(Principal::Console, 1, 1, 0), Err(PolicyError::TooManyPrincipals));
    assert!(policy.request(ALICE, 1, 0).is_ok());
}

#[test]
fn status_serializes_with_every_counter() {
    let mut policy = budget_only(10, SECOND);
    policy.request(ALICE, 4, 0).unwrap();
    let json = serde_json::to_value(policy.status(ALICE, 0)).unwrap();
    assert_eq!(json["principal"], "token:1");
    assert_eq!(json["remaining_tokens"], 6);
    assert_eq!(json["limits"]["budget_tokens"], 10);
    assert_eq!(json["counters"]["tokens_granted"], 4);
    assert_eq!(json["counters"].as_object().unwrap().len(), 9);
}

proptest! {
    /// Whatever the sequence of requests and completions, no window grants more than the budget, the bucket
    /// never allows more than burst + rate * elapsed requests, and every request is counted exactly once.
    #[test]
    fn budget_and_bucket_hold_under_any_sequence(
        steps in proptest::collection::vec((0u64..400_000_000, 1u64..50, any::<bool>(), 0u64..50), 1..200),
        budget_tokens in 1u64..200,
        rate_per_second in 1u64..10,
        burst in 1u64..5,
    ) {
        let window_ns = SECOND;
        let mut policy = Policy::new(Limits { budget_tokens, window_ns, rate_per_second, burst, ..Limits::DEFAULT }).unwrap();
        let mut now = 0u64;
        let mut allowed_times = Vec::new();
        for (advance, max_tokens, complete, used) in steps {
            now += advance;
            if let Ok(grant) = policy.request(ALICE, max_tokens, now) {
                prop_assert!(grant.granted_tokens >= 1 && grant.granted_tokens <= max_tokens);
                prop_assert_eq!(grant.cut, grant.granted_tokens < max_tokens);
                allowed_times.push(now);
                if complete {
                    policy.complete(grant.id, used.min(grant.granted_tokens), now).unwrap();
                }
            }
            let status = policy.status(ALICE, now);
            prop_assert!(status.window_used_tokens <= budget_tokens);
            prop_assert_eq!(status.remaining_tokens, budget_tokens - status.window_used_tokens);
            let counters = status.counters;
            prop_assert_eq!(counters.requests, counters.allowed + counters.refused_rate + counters.refused_budget + counters.refused_other);
        }
        for (index, &start) in allowed_times.iter().enumerate() {
            for (count, &end) in allowed_times[index..].iter().enumerate() {
                let allowed_in_span = count as u128 + 1;
                let refilled = u128::from(end - start) * u128::from(rate_per_second) / u128::from(SECOND);
                prop_assert!(allowed_in_span <= u128::from(burst) + refilled);
            }
        }
    }
}
