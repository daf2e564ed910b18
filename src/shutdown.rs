//! A shutdown that drains. On SIGTERM or SIGINT a `penguin serve` stops accepting
//! connections, lets every request in flight finish (an order runs to its end) for up
//! to `SHUTDOWN_GRACE` (`middleware::InFlight`), asks its background loops to stop
//! ([`Stop`]), closes the connections left idle, and exits. Answers given while
//! draining carry `Connection: close`, so clients do not send more on a connection
//! that is about to close.

use std::future::Future;

use tokio::sync::watch;

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
