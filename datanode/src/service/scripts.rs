//! Consecutive scripts of a batch, run one after another by one thread of the blocking pool,
//! each in a critical section of its own.
//!
//! A script may hold the node for long, so it never runs on a runtime worker. Handing each
//! script to the blocking pool alone cost a thread wake-up and a switch back per script
//! (most of the datanode's ~45 µs per EVAL, session 23); here one handoff carries the run.
//! The stream watches it: once a script has held the node past [`SCRIPT_INLINE`], the stream
//! takes back the scripts not started yet (they run after it with the rest of the stream's
//! commands, or are answered BUSY as those are), answers the scripts that ended, and goes on;
//! the run's last replies go out from a task of their own.
//!
//! ```text
//!  thread:  [claim i (next += 1)] ─ lock ─ [current := now] ─ script i ─ unlock ─
//!           [current := none, ended += i] ─ [claim i+1] ...
//!  stream:  every SCRIPT_INLINE: [the current script has held the node that long?
//!             yes: next := TAKEN_BACK]; scripts >= the old next are the stream's again
//! ```
//!
//! The bracketed steps are under the `current` lock: the stream takes scripts back only
//! while one holds the node, which the thread cannot have left for the next one meanwhile.
//! So what the stream takes back runs after the script holding the node (a client's
//! pipeline keeps its order), never beside it: a script claimed but not yet holding the
//! node could lose the node to its own successors (run out of order, or answered BUSY as
//! if another client's script held it: seen in a flood of EVALs on one connection).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;

use super::{answer_batch, busy_answer, send_replies, Batch, Blocked, Out, SCRIPT_INLINE};
use crate::host::Host;
use crate::node::{self, Applied, Node};
use crate::storage::StoreError;

/// `next` at or past this: the stream took the scripts not started back.
const TAKEN_BACK: usize = usize::MAX / 2;

type Ran = Option<Result<Applied, StoreError>>;

#[derive(Default)]
struct Run {
    /// The next script to start: the thread claims one by adding 1; the stream takes the rest
    /// back by swapping in TAKEN_BACK (whichever comes first decides a script's side).
    next: AtomicUsize,
    /// Since when the script holding the node has held it (None: none holds it now).
    /// Claims (`next`) and take-backs happen under this lock.
    current: Mutex<Option<Instant>>,
    /// Scripts that ended, with what they did (None: another stream's script held the node).
    ended: Mutex<Vec<(usize, Ran)>>,
}

/// Runs the first `count` requests of `batch` (all scripts, `count` > 1) as above; appends the
/// replies of those that ended while the stream waited to `replies`. Returns what the stream
/// runs next (scripts it took back or that found the node held, then the batch's rest) and
/// whether a script found the node held by another stream's script (the stream then runs the
/// next one alone, which waits for the node as a lone script does). None: the gateway's
/// stream is gone.
pub(super) async fn run(
    host: &Arc<Host>,
    mut batch: Batch,
    count: usize,
    tx: &Out,
    blocked: &Blocked,
    replies: &mut Vec<pb::Reply>,
) -> Option<(Batch, bool)> {
    let mut rest = batch.split_off(count);
    rest.others = std::mem::take(&mut batch.others);
    rest.stale = std::mem::take(&mut batch.stale);
    let Batch { node, epoch, ids, requests, .. } = batch;
    let requests = Arc::new(requests);
    let run = Arc::new(Run::default());
    let mut thread = {
        let (node, requests, run) = (node.clone(), requests.clone(), run.clone());
        tokio::task::spawn_blocking(move || loop {
            let claimed = {
                let _current = run.current.lock();
                run.next.fetch_add(1, Ordering::SeqCst)
            };
            let Some(script) = requests.get(claimed..=claimed) else { break };
            let ran = node.try_execute_batch_then(script, || *run.current.lock() = Some(Instant::now()));
            let held = ran.is_none();
            {
                let mut current = run.current.lock();
                *current = None;
                run.ended.lock().push((claimed, ran));
            }
            if held {
                break;
            }
        })
    };
    let mut tick = tokio::time::interval(SCRIPT_INLINE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed = false;
    let taken_back = loop {
        tokio::select! {
            biased;
            joined = &mut thread => {
                if let Err(e) = joined {
                    tracing::error!(node = %node.id, "a script run's thread failed: {e}");
                    failed = true;
                }
                break None;
            }
            _ = tick.tick() => {
                let current = run.current.lock();
                if current.is_some_and(|since| since.elapsed() >= SCRIPT_INLINE) {
                    break Some(run.next.swap(TAKEN_BACK, Ordering::SeqCst));
                }
            }
        }
    };
    let claimed = taken_back.unwrap_or_else(|| run.next.load(Ordering::SeqCst)).min(count);
    let mut again = Vec::new();
    let ended = std::mem::take(&mut *run.ended.lock());
    if failed {
        // The script the thread was running when it failed has no outcome: an error, not
        // silence (its client would wait for its reply until the gateway gives up).
        let lost = (0..claimed).filter(|i| !ended.iter().any(|(e, _)| e == i));
        replies.extend(lost.map(|i| super::reply(ids[i], ferrocache_common::Reply::error("ERR internal error"))));
    }
    for (i, ran) in ended {
        match ran {
            Some(applied) => {
                replies.extend(answer_batch(host, single(&node, epoch, &ids, &requests, i), applied, tx, blocked))
            }
            None => again.push(i),
        }
    }
    let stalled = !again.is_empty();
    again.extend(claimed..count);
    if taken_back.is_some() {
        // What ended is answered now, not after the long script.
        if !send_replies(tx, Some(&node), std::mem::take(replies)).await {
            return None;
        }
        let (host, tx, blocked, node, run) = (host.clone(), tx.clone(), blocked.clone(), node.clone(), run.clone());
        let (ids, requests) = (ids.clone(), requests.clone());
        tokio::spawn(async move {
            let _ = thread.await;
            let mut late = Vec::new();
            for (i, ran) in std::mem::take(&mut *run.ended.lock()) {
                match ran {
                    Some(applied) => {
                        let script = single(&node, epoch, &ids, &requests, i);
                        late.extend(answer_batch(&host, script, applied, &tx, &blocked));
                    }
                    // Claimed as the stream took the rest back, and another stream's script
                    // held the node: the stream has gone on, so running it now could pass
                    // this client's next commands. BUSY, as a command meeting that script.
                    None => late.push(super::reply(ids[i], busy_answer(&node, &requests[i].0))),
                }
            }
            send_replies(&tx, Some(&node), late).await;
        });
    }
    again.sort_unstable();
    let mut next = Batch {
        ids: again.iter().map(|&i| ids[i]).collect(),
        requests: again.iter().map(|&i| requests[i].clone()).collect(),
        node,
        epoch,
        others: Vec::new(),
        stale: Vec::new(),
    };
    next.ids.append(&mut rest.ids);
    next.requests.append(&mut rest.requests);
    next.others = rest.others;
    next.stale = rest.stale;
    Some((next, stalled))
}

/// Script `i` as a batch of its own.
fn single(node: &Arc<Node>, epoch: u64, ids: &[u64], requests: &[(node::Request, bool)], i: usize) -> Batch {
    Batch {
        node: node.clone(),
        epoch,
        ids: vec![ids[i]],
        requests: vec![requests[i].clone()],
        others: Vec::new(),
        stale: Vec::new(),
    }
}
