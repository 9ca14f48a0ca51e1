//! The sampling task: every interval, one round of [`Sampler::sample`] on the blocking
//! pool (it reads `/proc` and asks the host for its services, both blocking calls),
//! its points encoded into the buffer in one locked step, then the writer is woken.
//! Sampling never waits for InfluxDB: while it is down, rounds keep their own
//! timestamps and pile up in the buffer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use plugin_api::Host;
use plugin_api::tokio::{self, sync::Notify, sync::watch};

use crate::line::Point;
use crate::sample::{Sampler, services_from};
use crate::state::{Shared, now_ms};

#[derive(Debug)]
pub struct Collector {
    pub host: Host,
    pub sampler: Sampler,
    pub shared: Arc<Shared>,
    pub wake: Arc<Notify>,
    pub interval: Duration,
}

impl Collector {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Self { host, mut sampler, shared, wake, interval } = self;
        let mut ticker = tokio::time::interval(interval);
        // After a stall (a suspended VM), carry on at the interval rather than firing
        // a burst of rounds with nearly the same time.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_ms = 0;
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = ticker.tick() => {}
            }
            let h = host.clone();
            let round = tokio::task::spawn_blocking(move || {
                // Timestamps only move forward: a clock stepped back must not make this
                // round overwrite points of an earlier one.
                let time_ms = now_ms().max(last_ms + 1);
                let result = catch_unwind(AssertUnwindSafe(|| {
                    let services = services_from(&h.services());
                    sampler.sample(&services, time_ms).iter().filter_map(Point::encode).collect::<Vec<_>>()
                }));
                (sampler, time_ms, result)
            })
            .await;
            let Ok((back, time_ms, result)) = round else {
                host.warn("the sampling thread was lost; sampling stops until the module is reloaded");
                break;
            };
            sampler = back;
            let Ok(lines) = result else {
                host.warn("a sampling round panicked; its points are skipped");
                continue;
            };
            last_ms = time_ms;
            let mut s = shared.lock();
            for line in lines {
                s.buffer.push(line);
            }
            s.samples += 1;
            s.last_sample_ms = Some(time_ms);
            drop(s);
            wake.notify_one();
        }
    }
}
