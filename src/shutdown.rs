//! A shutdown that drains. On SIGTERM or SIGINT a `penguin serve` stops accepting
//! connections, lets every request in flight finish (an order runs to its end) for up
//! to `SHUTDOWN_GRACE`, asks its background loops to stop, closes the connections
//! left idle, and exits. Answers given while draining carry `Connection: close`, so
//! clients do not send more on a connection that is about to close.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

/// The requests being answered by the services of one process.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    draining: AtomicBool,
    idle: Notify,
}

/// One request in flight, counted until dropped.
pub struct Request(Arc<InFlight>);

impl Request {
    /// Whether the process is shutting down.
    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::Acquire)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    pub fn enter(self: &Arc<Self>) -> Request {
        self.count.fetch_add(1, Ordering::AcqRel);
        Request(self.clone())
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Marks the process as shutting down and waits until no request is in flight,
    /// or `grace` is over. Returns how many requests were still in flight.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.draining.store(true, Ordering::Release);
        let deadline = Instant::now() + grace;
        loop {
            let idle = self.idle.notified();
            if self.count() == 0 {
                return 0;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || actix_web::rt::time::timeout(left, idle).await.is_err() {
                return self.count();
            }
        }
    }
}

/// Tells background loops to stop; clones share it.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

/// The side that asks for the stop.
#[derive(Debug)]
pub struct StopSender(watch::Sender<bool>);

impl Stop {
    pub fn new() -> (StopSender, Self) {
        let (sender, receiver) = watch::channel(false);
        (StopSender(sender), Self(receiver))
    }

    /// Resolves once the stop is asked for.
    pub async fn asked(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Runs `work` until the stop is asked for; `None` if it was cut short.
    pub async fn unless_asked<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            value = work => Some(value),
            () = self.asked() => None,
        }
    }
}

impl StopSender {
    pub fn send(&self) {
        let _ = self.0.send(true);
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    use actix_web::rt::signal;
    let terminate = async {
        match signal::unix::signal(signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(e) => {
                log::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops penguin");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = signal::ctrl_c() => log::info!("SIGINT received"),
        () = terminate => log::info!("SIGTERM received"),
    }
}
