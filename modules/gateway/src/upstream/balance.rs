//! Choosing an instance among those a filter allows: smooth-enough weighted round
//! robin (a shared turn counter walked over cumulative weights), power of two choices
//! on requests in flight (`weight / (active + 1)`), or weighted random. One pass over
//! the list, no allocation: upstreams hold tens of instances, not thousands.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use super::Instance;
use crate::settings::Balance;

pub fn pick(
    list: &[Arc<Instance>],
    policy: Balance,
    turn: &AtomicUsize,
    allowed: impl Fn(&Instance) -> bool,
) -> Option<Arc<Instance>> {
    let (count, total_weight) =
        list.iter().filter(|i| allowed(i)).fold((0usize, 0usize), |(n, w), i| (n + 1, w + i.weight as usize));
    if count == 0 {
        return None;
    }
    let nth_weighted = |mut point: usize| {
        list.iter().filter(|i| allowed(i)).find(|i| {
            let w = i.weight as usize;
            if point < w {
                true
            } else {
                point -= w;
                false
            }
        })
    };
    let chosen = match policy {
        Balance::RoundRobin => nth_weighted(turn.fetch_add(1, Ordering::Relaxed) % total_weight),
        Balance::Weighted => nth_weighted(rand::rng().random_range(0..total_weight)),
        Balance::LeastRequest => {
            let nth = |n: usize| list.iter().filter(|i| allowed(i)).nth(n);
            let mut rng = rand::rng();
            let a = rng.random_range(0..count);
            let b = if count > 1 { (a + rng.random_range(1..count)) % count } else { a };
            match (nth(a), nth(b)) {
                (Some(x), Some(y)) => {
                    // Compare weight/(active+1) without division.
                    let score = |i: &Instance| (i.weight as u64, i.active() as u64 + 1);
                    let ((wx, ax), (wy, ay)) = (score(x), score(y));
                    Some(if wx * ay >= wy * ax { x } else { y })
                }
                (x, y) => x.or(y),
            }
        }
    };
    chosen.cloned()
}

#[cfg(test)]
mod tests {
    use crate::settings::{Balance, CircuitSettings, OutlierSettings};
    use crate::upstream::{Member, Upstream, now_ms};

    fn upstream(weights: &[u32]) -> Upstream {
        let u = Upstream::new("u".into(), OutlierSettings::default(), CircuitSettings::default());
        let members: Vec<Member> = weights
            .iter()
            .enumerate()
            .map(|(n, w)| Member {
                addr: format!("127.0.0.1:{}", 9000 + n).parse().unwrap(),
                id: n.to_string(),
                weight: *w,
            })
            .collect();
        u.set_members(&members);
        u
    }

    fn counts(u: &Upstream, policy: Balance, picks: usize) -> Vec<usize> {
        let mut seen = vec![0; u.instances().len()];
        for _ in 0..picks {
            let i = u.pick(policy, &[], now_ms()).unwrap();
            seen[i.id.parse::<usize>().unwrap()] += 1;
        }
        seen
    }

    #[test]
    fn round_robin_takes_turns_by_weight() {
        assert_eq!(counts(&upstream(&[1, 1, 1]), Balance::RoundRobin, 300), vec![100, 100, 100]);
        assert_eq!(counts(&upstream(&[1, 3]), Balance::RoundRobin, 400), vec![100, 300]);
    }

    #[test]
    fn weighted_random_follows_weights() {
        let seen = counts(&upstream(&[1, 9]), Balance::Weighted, 10_000);
        assert!((700..1300).contains(&seen[0]), "{seen:?}");
    }

    #[test]
    fn least_request_avoids_the_busy_instance() {
        let u = upstream(&[1, 1]);
        let busy = u.instances()[0].clone();
        let _held: Vec<_> = (0..10).map(|_| busy.enter()).collect();
        let seen = counts(&u, Balance::LeastRequest, 200);
        assert_eq!(seen[0], 0, "{seen:?}");
    }

    #[test]
    fn tried_instances_are_skipped_until_none_is_left() {
        let u = upstream(&[1, 1]);
        let first = u.pick(Balance::RoundRobin, &[], now_ms()).unwrap();
        let second = u.pick(Balance::RoundRobin, &[first.addr], now_ms()).unwrap();
        assert_ne!(first.addr, second.addr);
        assert!(u.pick(Balance::RoundRobin, &[first.addr, second.addr], now_ms()).is_some(), "falls back to any");
    }
}
