use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn manifest(i: usize, at: DateTime<Utc>) -> Manifest {
    Manifest::sample(&format!("b{i:05}"), at, 1)
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn kept(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .filter(|d| d.keep())
        .map(|d| d.id.clone())
        .collect()
}

#[test]
fn only_old_backups_still_keep_the_newest() {
    let backups: Vec<_> = (0..5)
        .map(|i| manifest(i, at(2020, 1, 1 + i as u32, 3)))
        .collect();
    let policy = BackupRetention {
        within_days: 30,
        daily: 0,
        weekly: 0,
        monthly: 0,
    };
    let d = evaluate(&backups, &policy, at(2026, 6, 1, 0));
    assert_eq!(kept(&d), vec!["b00004"]);
    assert_eq!(d[4].reasons, vec!["newest backup"]);
}

#[test]
fn daily_weekly_and_monthly_pick_the_newest_of_each_period() {
    // Two backups a day through January and February 2024 (a leap year).
    let mut backups = Vec::new();
    let mut t = at(2024, 1, 1, 3);
    while t < at(2024, 3, 1, 0) {
        backups.push(manifest(backups.len(), t));
        backups.push(manifest(backups.len(), t + Duration::hours(12)));
        t += Duration::days(1);
    }
    let policy = BackupRetention {
        within_days: 0,
        daily: 3,
        weekly: 2,
        monthly: 2,
    };
    let d = evaluate(&backups, &policy, at(2024, 3, 10, 0));
    let reasons_of = |day: u32, month: u32| {
        d.iter()
            .find(|x| x.finished_at == at(2024, month, day, 15))
            .map(|x| x.reasons.clone())
            .unwrap()
    };
    assert_eq!(
        reasons_of(29, 2),
        vec![
            "newest backup",
            "daily 2024-02-29",
            "weekly 2024-W09",
            "monthly 2024-02"
        ]
    );
    assert_eq!(reasons_of(28, 2), vec!["daily 2024-02-28"]);
    assert_eq!(
        reasons_of(25, 2),
        vec!["weekly 2024-W08"],
        "Sunday closes ISO week 8"
    );
    assert_eq!(
        reasons_of(31, 1),
        vec!["monthly 2024-01"],
        "a month's last day"
    );
    assert_eq!(kept(&d).len(), 5, "Feb 29, 28, 27, 25 and Jan 31");
}

#[test]
fn gaps_do_not_use_up_the_count() {
    let backups = vec![
        manifest(0, at(2025, 1, 1, 3)),
        manifest(1, at(2025, 3, 1, 3)),
        manifest(2, at(2025, 6, 1, 3)),
    ];
    let policy = BackupRetention {
        within_days: 0,
        daily: 3,
        weekly: 0,
        monthly: 0,
    };
    assert_eq!(
        kept(&evaluate(&backups, &policy, at(2025, 12, 1, 0))).len(),
        3
    );
}

fn catalog() -> impl Strategy<Value = Vec<Manifest>> {
    // Up to 120 backups spread over about three years around a leap day.
    prop::collection::vec(0i64..(3 * 365 * 24), 0..120).prop_map(|hours| {
        let base = at(2023, 6, 1, 0);
        hours
            .into_iter()
            .enumerate()
            .map(|(i, h)| manifest(i, base + Duration::hours(h)))
            .collect()
    })
}

fn policy() -> impl Strategy<Value = BackupRetention> {
    (0u32..60, 0u32..10, 0u32..6, 0u32..14).prop_map(|(within_days, daily, weekly, monthly)| {
        BackupRetention {
            within_days,
            daily,
            weekly,
            monthly,
        }
    })
}

proptest! {
    #[test]
    fn the_newest_backup_is_always_kept(backups in catalog(), policy in policy(), days_later in 0i64..2000) {
        let now = at(2026, 6, 1, 0) + Duration::days(days_later);
        let d = evaluate(&backups, &policy, now);
        if let Some(newest) = backups.iter().max_by(|a, b| a.finished_at.cmp(&b.finished_at).then(a.id.cmp(&b.id))) {
            prop_assert!(d.iter().any(|x| x.id == newest.id && x.keep()));
        }
    }

    #[test]
    fn everything_within_the_window_is_kept(backups in catalog(), policy in policy(), days_later in -400i64..400) {
        let now = at(2025, 1, 1, 0) + Duration::days(days_later);
        let cutoff = now - Duration::days(i64::from(policy.within_days));
        for x in evaluate(&backups, &policy, now) {
            if x.finished_at >= cutoff {
                prop_assert!(x.keep(), "{} at {} is inside the window", x.id, x.finished_at);
            }
        }
    }

    #[test]
    fn the_kept_set_is_bounded_and_stable(backups in catalog(), policy in policy()) {
        let now = at(2026, 6, 1, 0);
        let d = evaluate(&backups, &policy, now);
        let kept_ids: Vec<String> = kept(&d);
        let cutoff = now - Duration::days(i64::from(policy.within_days));
        let in_window = backups.iter().filter(|m| m.finished_at >= cutoff).count();
        prop_assert!(kept_ids.len() <= in_window + (policy.daily + policy.weekly + policy.monthly) as usize + 1);
        // Pruning what is not kept and deciding again keeps the same set.
        let survivors: Vec<Manifest> = backups.iter().filter(|m| kept_ids.contains(&m.id)).cloned().collect();
        prop_assert_eq!(kept(&evaluate(&survivors, &policy, now)), kept_ids);
    }

    #[test]
    fn each_of_the_last_n_days_keeps_its_newest(backups in catalog(), daily in 1u32..10) {
        let policy = BackupRetention { within_days: 0, daily, weekly: 0, monthly: 0 };
        let d = evaluate(&backups, &policy, at(2026, 6, 1, 0));
        let mut days: Vec<chrono::NaiveDate> = backups.iter().map(|m| m.finished_at.date_naive()).collect();
        days.sort();
        days.dedup();
        for day in days.iter().rev().take(daily as usize) {
            let newest = backups
                .iter()
                .filter(|m| m.finished_at.date_naive() == *day)
                .max_by(|a, b| a.finished_at.cmp(&b.finished_at).then(a.id.cmp(&b.id)))
                .unwrap();
            prop_assert!(d.iter().any(|x| x.id == newest.id && x.keep()));
        }
    }
}

/// The numbers of docs/backup-restore.md (Retention): a Redis RDB every 15
/// minutes for 120 days, under the Redis table (3 daily, 2 weekly, 3
/// monthly) with windows of 30, 3 and 0 days.
#[test]
fn a_fifteen_minute_schedule_keeps_what_the_docs_say() {
    let now = at(2026, 11, 30, 12);
    let backups: Vec<_> = (0..120 * 96)
        .map(|i| manifest(i, now - Duration::minutes(15 * i as i64)))
        .collect();
    let count = |within_days| {
        // The Redis schedule of the guide: 3 daily, 2 weekly, 3 monthly.
        let policy = BackupRetention {
            within_days,
            daily: 3,
            weekly: 2,
            monthly: 3,
        };
        kept(&evaluate(&backups, &policy, now)).len()
    };
    let (thirty, three, none) = (count(30), count(3), count(0));
    assert!((2_880..=2_884).contains(&thirty), "{thirty}");
    assert!((288..=294).contains(&three), "{three}");
    assert!(none <= 9, "{none}");
}
