//! A node's queue in the gateway: the commands of every client connection bound for that
//! node wait here, bounded, until its link (link.rs) takes them as a batch.
//!
//! tokio's bounded mpsc cost a semaphore round per command, whose release takes a mutex:
//! ~5 % of the gateway's CPU under pipelined GETs. Here queueing a command is one
//! uncontended lock, and the link takes a whole batch under one.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::Notify;

pub struct NodeQueue<T> {
    inner: Mutex<Inner<T>>,
    capacity: usize,
    /// Wakes the link: the queue was empty and is not, or it closed.
    queued: Notify,
    /// Wakes the senders waiting for room.
    room: Notify,
}

struct Inner<T> {
    items: VecDeque<T>,
    /// Nothing more is queued; what is queued still goes out.
    closed: bool,
}

impl<T> NodeQueue<T> {
    pub fn new(capacity: usize) -> NodeQueue<T> {
        NodeQueue {
            inner: Mutex::new(Inner { items: VecDeque::new(), closed: false }),
            capacity,
            queued: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Queues `item`, waiting while the queue is full (backpressure); gives it back if the
    /// queue is closed.
    pub async fn push(&self, item: T) -> Result<(), T> {
        loop {
            // Made before the check: a notice of room given after it is not missed.
            let room = self.room.notified();
            {
                let mut q = self.inner.lock();
                if q.closed {
                    return Err(item);
                }
                if q.items.len() < self.capacity {
                    let was_empty = q.items.is_empty();
                    q.items.push_back(item);
                    drop(q);
                    // The link waits only on an empty queue: one notice per batch.
                    if was_empty {
                        self.queued.notify_one();
                    }
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// Waits until something is queued: true, or false once the queue is closed and empty.
    pub async fn ready(&self) -> bool {
        loop {
            {
                let q = self.inner.lock();
                if !q.items.is_empty() {
                    return true;
                }
                if q.closed {
                    return false;
                }
            }
            // A push after the check above leaves its notice stored for this wait.
            self.queued.notified().await;
        }
    }

    /// Moves up to `max` items from the front into `out` for as long as `take` accepts the
    /// next one.
    pub fn take_while(&self, out: &mut Vec<T>, max: usize, mut take: impl FnMut(&T) -> bool) {
        let mut q = self.inner.lock();
        let was_full = q.items.len() >= self.capacity;
        let max = max.min(q.items.len());
        out.reserve(max);
        for _ in 0..max {
            if !q.items.front().is_some_and(&mut take) {
                break;
            }
            out.extend(q.items.pop_front());
        }
        drop(q);
        if was_full {
            self.room.notify_waiters();
        }
    }

    /// Everything queued, taken out.
    pub fn take_all(&self) -> VecDeque<T> {
        let items = std::mem::take(&mut self.inner.lock().items);
        self.room.notify_waiters();
        items
    }

    /// No more items are taken in; the link still gets what is queued.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.room.notify_waiters();
        self.queued.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn items_come_out_in_order_in_batches() {
        let q = NodeQueue::new(100);
        for i in 0..10 {
            q.push(i).await.unwrap();
        }
        assert!(q.ready().await);
        let mut out = Vec::new();
        q.take_while(&mut out, 4, |_| true);
        assert_eq!(out, [0, 1, 2, 3]);
        q.take_while(&mut out, 3, |&i| i < 6);
        assert_eq!(out, [0, 1, 2, 3, 4, 5]);
        q.take_while(&mut out, usize::MAX, |_| true);
        assert_eq!(out, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_full_queue_holds_senders_until_room() {
        let q = Arc::new(NodeQueue::new(2));
        q.push(1).await.unwrap();
        q.push(2).await.unwrap();
        let sender = tokio::spawn({
            let q = q.clone();
            async move { q.push(3).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sender.is_finished(), "a third item must wait for room");
        let mut out = Vec::new();
        q.take_while(&mut out, 1, |_| true);
        assert_eq!(out, [1]);
        tokio::time::timeout(Duration::from_secs(5), sender).await.unwrap().unwrap().unwrap();
        q.take_while(&mut out, usize::MAX, |_| true);
        assert_eq!(out, [1, 2, 3]);
    }

    #[tokio::test]
    async fn the_link_wakes_for_the_first_item_and_at_close() {
        let q = Arc::new(NodeQueue::new(8));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.ready().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.push(7).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap());
        // Closed: what is queued still comes out, new items are refused.
        q.close();
        assert_eq!(q.push(8).await, Err(8));
        assert!(q.ready().await);
        assert_eq!(q.take_all(), [7]);
        assert!(!tokio::time::timeout(Duration::from_secs(5), q.ready()).await.unwrap());
    }

    #[tokio::test]
    async fn closing_frees_waiting_senders() {
        let q = Arc::new(NodeQueue::new(1));
        q.push(1).await.unwrap();
        let sender = tokio::spawn({
            let q = q.clone();
            async move { q.push(2).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.close();
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), sender).await.unwrap().unwrap(), Err(2));
    }
}
