//! The per-device work queue: bounded, ordered by validator stake, run on a dedicated OS thread.
//!
//! GPU work never runs on the async runtime's threads: each device gets one worker thread that owns
//! the device context and takes jobs one at a time, highest stake first (first come first served
//! within equal stake). Submitting never waits: a full queue either evicts its lowest-stake waiting
//! job (when the newcomer outranks it) or refuses the newcomer at once. A job whose requester has
//! gone away (its result receiver was dropped) is skipped without running.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// Why a job was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// Every slot holds a job of equal or higher stake.
    #[error("the work queue is full; retry shortly")]
    Full,
    /// The queue's worker has stopped.
    #[error("the work queue has shut down")]
    Closed,
}

/// A queued job with its result channel, type-erased over the result type.
trait Pending<C>: Send {
    /// Whether the requester has gone away (dropped the receiver).
    fn abandoned(&self) -> bool;
    /// Runs the job unless abandoned; returns whether it ran.
    fn run(self: Box<Self>, context: &mut C) -> bool;
}

struct PendingJob<T, F> {
    tx: oneshot::Sender<T>,
    work: F,
}

impl<C, T: Send, F: FnOnce(&mut C) -> T + Send> Pending<C> for PendingJob<T, F> {
    fn abandoned(&self) -> bool {
        self.tx.is_closed()
    }

    fn run(self: Box<Self>, context: &mut C) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        let out = (self.work)(context);
        // The requester may leave while the job runs; the result is then discarded.
        let _ = self.tx.send(out);
        true
    }
}

type Job<C> = Box<dyn Pending<C>>;

struct State<C> {
    waiting: BTreeMap<(u64, Reverse<u64>), Job<C>>,
    next_seq: u64,
    closed: bool,
    /// Whether the worker is running a job now.
    running: bool,
}

struct Shared<C> {
    state: Mutex<State<C>>,
    wakeup: Condvar,
    capacity: usize,
    metrics: Metrics,
}

impl<C> Shared<C> {
    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A bounded, stake-ordered queue in front of one device's worker thread.
///
/// `C` is the device context the worker owns (a burn device, a warm model…); it is created on the
/// worker thread by the factory given to [`WorkQueue::start`] and never leaves it.
pub struct WorkQueue<C> {
    shared: Arc<Shared<C>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl<C: 'static> fmt::Debug for WorkQueue<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue")
            .field("capacity", &self.shared.capacity)
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

impl<C: 'static> WorkQueue<C> {
    /// Starts the worker thread named `name`, which builds its context with `make_context`, and
    /// returns the queue in front of it. `capacity` is the number of jobs that may wait (the running
    /// job is not counted).
    pub fn start<F>(name: &str, capacity: usize, metrics: Metrics, make_context: F) -> std::io::Result<Self>
    where
        F: FnOnce() -> C + Send + 'static,
    {
        Self::start_with_background(name, capacity, metrics, make_context, |_| false)
    }

    /// [`start`](Self::start), with background work: whenever no job is waiting, the worker calls
    /// `background` (one short unit of work, such as one decoding step of a continuous batch) for as
    /// long as it returns `true`, checking the queue between calls; it sleeps once `background` returns
    /// `false`, until the next job. Queued jobs thus always run before the next unit of background work.
    pub fn start_with_background<F>(
        name: &str,
        capacity: usize,
        metrics: Metrics,
        make_context: F,
        background: fn(&mut C) -> bool,
    ) -> std::io::Result<Self>
    where
        F: FnOnce() -> C + Send + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                waiting: BTreeMap::new(),
                next_seq: 0,
                closed: false,
                running: false,
            }),
            wakeup: Condvar::new(),
            capacity,
            metrics,
        });
        let worker_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let mut context = make_context();
            worker_loop(&worker_shared, &mut context, background);
        })?;
        Ok(Self {
            shared,
            worker: Mutex::new(Some(handle)),
        })
    }

    /// Queues `work` with priority `stake` and returns the receiver of its result, or refuses it at
    /// once when the queue is full of jobs of equal or higher stake. When the newcomer outranks the
    /// lowest-stake waiting job, that job is evicted (its receiver sees the sender dropped).
    ///
    /// If the returned receiver is dropped before the worker reaches the job, the job is skipped.
    pub fn submit<T, F>(&self, stake: u64, work: F) -> Result<oneshot::Receiver<T>, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut C) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job<C> = Box::new(PendingJob { tx, work });
        let mut state = self.shared.lock();
        if state.closed {
            return Err(QueueError::Closed);
        }
        // Drop jobs whose requesters already left before deciding that the queue is full.
        if state.waiting.len() >= self.shared.capacity {
            state.waiting.retain(|_, job| !job.abandoned());
        }
        if state.waiting.len() >= self.shared.capacity {
            let lowest = state.waiting.keys().next().copied();
            match lowest {
                Some(key) if key.0 < stake => {
                    state.waiting.remove(&key);
                    self.shared.metrics.queue_evicted.inc();
                }
                _ => return Err(QueueError::Full),
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.waiting.insert((stake, Reverse(seq)), job);
        self.shared.metrics.queue_depth.set(state.waiting.len() as i64);
        drop(state);
        self.shared.wakeup.notify_one();
        Ok(rx)
    }

    /// Jobs waiting (not counting the one running).
    pub fn depth(&self) -> usize {
        self.shared.lock().waiting.len()
    }

    /// Jobs waiting plus the one running, if any: what a new job would queue behind.
    pub fn load(&self) -> usize {
        let state = self.shared.lock();
        state.waiting.len() + usize::from(state.running)
    }

    /// Jobs that may wait.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Stops taking jobs, drops the waiting ones and waits for the worker to finish its current job.
    pub fn shutdown(&self) {
        {
            let mut state = self.shared.lock();
            state.closed = true;
            state.waiting.clear();
            self.shared.metrics.queue_depth.set(0);
        }
        self.shared.wakeup.notify_all();
        let handle = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            // A panicking job already reported itself; the queue is closing either way.
            let _ = handle.join();
        }
    }
}

impl<C> Drop for WorkQueue<C> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.waiting.clear();
        drop(state);
        self.shared.wakeup.notify_all();
    }
}

fn worker_loop<C>(shared: &Shared<C>, context: &mut C, background: fn(&mut C) -> bool) {
    // Whether background work may be pending: set after every job (a job may have started some), cleared
    // when `background` reports none.
    let mut busy = false;
    loop {
        let job = {
            let mut state = shared.lock();
            loop {
                if state.closed {
                    return;
                }
                if let Some((_, job)) = state.waiting.pop_last() {
                    shared.metrics.queue_depth.set(state.waiting.len() as i64);
                    state.running = true;
                    break Some(job);
                }
                if busy {
                    break None;
                }
                state = shared.wakeup.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let started = Instant::now();
        let Some(job) = job else {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| background(context)));
            shared
                .metrics
                .device_busy_seconds
                .inc_by(started.elapsed().as_secs_f64());
            busy = ran.unwrap_or_else(|_| {
                tracing::error!("background device work panicked; it is dropped");
                false
            });
            continue;
        };
        busy = true;
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(context)));
        shared.lock().running = false;
        match ran {
            Ok(true) => {
                shared
                    .metrics
                    .device_busy_seconds
                    .inc_by(started.elapsed().as_secs_f64());
            }
            Ok(false) => {
                shared.metrics.jobs_cancelled.inc();
            }
            Err(_) => {
                shared
                    .metrics
                    .device_busy_seconds
                    .inc_by(started.elapsed().as_secs_f64());
                tracing::error!("a device job panicked; its request is answered with an internal error");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn queue(capacity: usize) -> WorkQueue<Vec<u64>> {
        WorkQueue::start("test-device", capacity, Metrics::new(), Vec::new).expect("spawn worker")
    }

    /// Blocks the worker until the returned sender is used; returns once the worker is inside the job.
    fn hold(queue: &WorkQueue<Vec<u64>>) -> (mpsc::Sender<()>, oneshot::Receiver<()>) {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let rx = queue
            .submit(u64::MAX, move |_| {
                entered_tx.send(()).expect("test alive");
                release_rx.recv().expect("test releases");
            })
            .expect("empty queue accepts");
        entered_rx.recv().expect("worker entered the job");
        (release_tx, rx)
    }

    #[tokio::test]
    async fn runs_highest_stake_first_and_fifo_within_stake() {
        let q = queue(8);
        let (release, held) = hold(&q);
        let mut receivers = Vec::new();
        for (stake, tag) in [(5u64, 1u64), (9, 2), (5, 3), (1, 4), (9, 5)] {
            receivers.push(
                q.submit(stake, move |log: &mut Vec<u64>| {
                    log.push(tag);
                    log.clone()
                })
                .expect("room"),
            );
        }
        release.send(()).expect("worker alive");
        held.await.expect("held job ran");
        let mut last = Vec::new();
        for rx in receivers {
            let log = rx.await.expect("job ran");
            if log.len() > last.len() {
                last = log;
            }
        }
        assert_eq!(last, vec![2, 5, 1, 3, 4]);
    }

    #[tokio::test]
    async fn full_queue_refuses_or_evicts_by_stake() {
        let q = queue(2);
        let (release, held) = hold(&q);
        let low = q.submit(1, |_| 1u8).expect("room");
        let mid = q.submit(5, |_| 5u8).expect("room");
        assert_eq!(q.depth(), 2);
        assert_eq!(q.submit(1, |_| 0u8).unwrap_err(), QueueError::Full);
        let high = q.submit(9, |_| 9u8).expect("outranks the lowest waiting job");
        assert!(low.await.is_err(), "the evicted job's requester sees it dropped");
        release.send(()).expect("worker alive");
        held.await.expect("held job ran");
        assert_eq!(high.await.expect("ran"), 9);
        assert_eq!(mid.await.expect("ran"), 5);
    }

    #[tokio::test]
    async fn abandoned_job_is_not_run() {
        let q = queue(4);
        let (release, held) = hold(&q);
        let abandoned = q
            .submit(3, |log: &mut Vec<u64>| {
                log.push(99);
            })
            .expect("room");
        drop(abandoned);
        let probe = q.submit(1, |log: &mut Vec<u64>| log.clone()).expect("room");
        release.send(()).expect("worker alive");
        held.await.expect("held job ran");
        assert!(
            probe.await.expect("ran").is_empty(),
            "the abandoned job must not have run"
        );
    }

    /// Background work: one zero per call, three in all.
    fn three_zeros(log: &mut Vec<u64>) -> bool {
        if log.iter().filter(|&&x| x == 0).count() < 3 {
            log.push(0);
            true
        } else {
            false
        }
    }

    #[tokio::test]
    async fn waiting_jobs_run_before_background_work_which_then_runs_to_its_end() {
        let q = WorkQueue::start_with_background("test-device", 4, Metrics::new(), Vec::new, three_zeros)
            .expect("spawn worker");
        let (release, held) = hold(&q);
        let first = q.submit(1, |log: &mut Vec<u64>| log.push(7)).expect("room");
        let second = q.submit(1, |log: &mut Vec<u64>| log.push(8)).expect("room");
        release.send(()).expect("worker alive");
        held.await.expect("held job ran");
        first.await.expect("ran");
        second.await.expect("ran");
        // Background work runs until it reports none left, then the worker sleeps until the next job.
        let mut log = Vec::new();
        for _ in 0..200 {
            log = q
                .submit(1, |log: &mut Vec<u64>| log.clone())
                .expect("room")
                .await
                .expect("ran");
            if log.len() == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(log, vec![7, 8, 0, 0, 0]);
    }

    #[tokio::test]
    async fn shutdown_refuses_new_work() {
        let q = queue(1);
        q.shutdown();
        assert_eq!(q.submit(1, |_| ()).unwrap_err(), QueueError::Closed);
    }
}
