//! The bounded buffer between sampling and writing. Points are encoded lines, each with
//! a sequence number. The writer *peeks* a batch and acknowledges it by its last
//! sequence number only after InfluxDB answered 2xx: a failed or lost request leaves
//! the points in place for the retry. When full, the oldest point is dropped (and
//! counted): during a long outage the most recent history is the most useful, and
//! memory stays bounded. Sequence numbers make this safe while a batch is in flight:
//! an acknowledgement removes only what is still at the front with a number up to the
//! acknowledged one, so points dropped meanwhile are not counted twice and newer ones
//! are never removed.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Buffer {
    lines: VecDeque<(u64, String)>,
    capacity: usize,
    next_seq: u64,
    /// Points dropped because the buffer was full, since the module started.
    dropped: u64,
}

/// A batch to send: the lines joined by newlines, and what to acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub body: String,
    pub points: usize,
    pub last_seq: u64,
}

impl Buffer {
    pub fn new(capacity: usize) -> Self {
        Self { lines: VecDeque::new(), capacity: capacity.max(1), next_seq: 0, dropped: 0 }
    }

    /// Points held at most; beyond it the oldest go first.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn push(&mut self, line: String) {
        if self.lines.len() >= self.capacity {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back((self.next_seq, line));
        self.next_seq += 1;
    }

    /// Up to `max` of the oldest points, left in the buffer.
    pub fn peek(&self, max: usize) -> Option<Batch> {
        let taken: Vec<_> = self.lines.iter().take(max.max(1)).collect();
        let last_seq = taken.last()?.0;
        let mut body = String::with_capacity(taken.iter().map(|(_, l)| l.len() + 1).sum());
        for (_, line) in &taken {
            body.push_str(line);
            body.push('\n');
        }
        Some(Batch { body, points: taken.len(), last_seq })
    }

    /// Removes the points up to and including `last_seq` that are still buffered;
    /// returns how many.
    pub fn ack(&mut self, last_seq: u64) -> usize {
        let mut removed = 0;
        while self.lines.front().is_some_and(|(seq, _)| *seq <= last_seq) {
            self.lines.pop_front();
            removed += 1;
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize, n: usize) -> Buffer {
        let mut b = Buffer::new(capacity);
        for i in 0..n {
            b.push(format!("m v={i}i {i}"));
        }
        b
    }

    #[test]
    fn peek_leaves_and_ack_removes() {
        let mut b = filled(10, 5);
        let batch = b.peek(3).unwrap();
        assert_eq!(batch.body, "m v=0i 0\nm v=1i 1\nm v=2i 2\n");
        assert_eq!((batch.points, batch.last_seq), (3, 2));
        assert_eq!(b.len(), 5, "a peek alone removes nothing (the write may fail)");
        assert_eq!(b.peek(3), Some(batch.clone()), "a retry sends the same points");
        assert_eq!(b.ack(batch.last_seq), 3);
        assert_eq!(b.peek(10).unwrap().body, "m v=3i 3\nm v=4i 4\n");
        assert_eq!(b.ack(batch.last_seq), 0, "acknowledging twice removes nothing more");
        assert_eq!(b.ack(4), 2);
        assert!(b.is_empty() && b.peek(10).is_none());
    }

    #[test]
    fn full_buffer_drops_the_oldest_and_counts() {
        let b = filled(3, 5);
        assert_eq!((b.len(), b.dropped()), (3, 2));
        assert_eq!(b.peek(10).unwrap().body, "m v=2i 2\nm v=3i 3\nm v=4i 4\n");
    }

    #[test]
    fn drops_while_a_batch_is_in_flight() {
        let mut b = filled(4, 4);
        let in_flight = b.peek(3).unwrap(); // seq 0..=2
        // Two new points push out seq 0 and 1 while the request runs.
        b.push("m v=4i 4".into());
        b.push("m v=5i 5".into());
        assert_eq!(b.dropped(), 2);
        // Only seq 2 was still buffered; seq 3..=5 stay.
        assert_eq!(b.ack(in_flight.last_seq), 1);
        assert_eq!(b.peek(10).unwrap().body, "m v=3i 3\nm v=4i 4\nm v=5i 5\n");
    }

    #[test]
    fn zero_capacity_means_one() {
        let b = filled(0, 2);
        assert_eq!((b.len(), b.dropped()), (1, 1));
        assert_eq!(filled(5, 5).peek(0).unwrap().points, 1);
    }
}
