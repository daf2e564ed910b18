//! Moves on every order that no request is driving and that is not yet over or still
//! owes work to a peer, once at start and then every `RECOVERY_INTERVAL`: a crash, an
//! outage or a request cut short leaves it at some stage, and recovery calls the same
//! [`saga::advance`] that the request would have called next.
//!
//! Each order is moved on under a trace of its own, whose id its log lines and peer
//! calls carry; its first line names the request that placed the order.
//!
//! Recovery takes an order's turn first, so it never moves an order a request is
//! driving, and reads the order afresh once it holds the turn, so it never acts on a
//! stale copy.

use std::cell::Cell;
use std::sync::Arc;

use futures_util::StreamExt;

use super::breaker::Breakers;
use super::clients::{PeerApi, Peers};
use super::heal;
use super::instance::Instance;
use super::model::Pedido;
use super::repo;
use super::saga::{self, SagaContext, Store};
use crate::clock;
use crate::config::PeerSettings;
use crate::db::{Pool, run_write};
use crate::error::ApiError;
use crate::shutdown::Stop;
use crate::trace::{KeyValue, SpanKind, Trace};

const LOG_TARGET: &str = "pedidos";
/// How many unfinished orders one pass takes on.
const BATCH: i64 = 500;
/// How many orders one pass moves on at once.
const AT_ONCE: usize = 16;

/// Runs recovery passes until `stop` is asked; a pass cut short by it leaves each
/// order at a recorded stage, to be moved on at the next start.
pub fn spawn(
    pool: Pool,
    instance: Arc<Instance>,
    settings: PeerSettings,
    token: String,
    breakers: Breakers,
    mut stop: Stop,
) {
    actix_web::rt::spawn(async move {
        let peers = Peers::new(
            &settings,
            &token,
            &breakers,
            &instance.line_by_line,
            &instance.metrics,
        );
        let ctx = SagaContext {
            peers: &peers,
            store: &pool,
            instance: &instance,
        };
        loop {
            match stop.unless_asked(pass(&ctx)).await {
                None => break,
                Some(Ok(0)) => {}
                Some(Ok(n)) => log::info!(target: LOG_TARGET, "recovery settled {n} orders"),
                Some(Err(e)) => log::warn!(target: LOG_TARGET, "recovery pass failed: {e}"),
            }
            if let Err(e) = tidy(&pool, settings.idempotency_retention).await {
                log::warn!(target: LOG_TARGET, "could not forget old counts and keys: {e}");
            }
            // A peer found restored behind pedidos wakes recovery at once: orders that
            // need it are refused until it is healed.
            let pause = async {
                tokio::select! {
                    () = actix_web::rt::time::sleep(settings.recovery_interval) => {}
                    () = instance.healing.wake.notified() => {}
                }
            };
            if stop.unless_asked(pause).await.is_none() {
                break;
            }
        }
        log::debug!(target: LOG_TARGET, "recovery stopped");
    });
}

/// Forgets what is kept only for a while: the status page's counts of seconds long
/// past, and the Idempotency-Keys of finished orders older than `retention` (zero
/// keeps them), a batch per write so that orders never wait long behind it.
async fn tidy(pool: &Pool, retention: std::time::Duration) -> Result<(), ApiError> {
    const KEYS_AT_ONCE: usize = 2000;
    let seconds_before = clock::stored_ago(std::time::Duration::from_secs(120));
    run_write(pool, move |conn| {
        Ok(repo::forget_seconds_before(conn, &seconds_before)?)
    })
    .await?;
    if retention.is_zero() {
        return Ok(());
    }
    let keys_before = clock::stored_ago(retention);
    loop {
        let before = keys_before.clone();
        let forgotten = run_write(pool, move |conn| {
            Ok(repo::forget_keys_before(conn, &before, KEYS_AT_ONCE)?)
        })
        .await?;
        if forgotten < KEYS_AT_ONCE {
            return Ok(());
        }
    }
}

/// One pass: what a restore left to heal first, then the unfinished orders; returns how
/// many orders it finished.
pub async fn pass<P: PeerApi, S: Store>(ctx: &SagaContext<'_, P, S>) -> Result<usize, ApiError> {
    ctx.instance.metrics.recovery_passes.inc();
    heal::pass(ctx).await?;
    let ids = ctx.store.unfinished(BATCH).await?;
    let finished = Cell::new(0);
    futures_util::stream::iter(ids)
        .for_each_concurrent(AT_ONCE, |id| {
            let finished = &finished;
            async move {
                match settle(ctx, id).await {
                    Ok(true) => finished.set(finished.get() + 1),
                    Ok(false) => {}
                    Err(e) => log::warn!(target: LOG_TARGET, "recovery could not move pedido {id} on: {e}"),
                }
            }
        })
        .await;
    Ok(finished.get())
}

/// Moves one order on as far as it goes now, under a trace of its own; returns
/// whether it is finished.
async fn settle<P: PeerApi, S: Store>(ctx: &SagaContext<'_, P, S>, id: i64) -> Result<bool, ApiError> {
    let Some(_claim) = ctx.instance.in_progress.claim(id) else {
        return Ok(false);
    };
    let Some(pedido) = ctx.store.load(id).await? else {
        return Ok(false);
    };
    let trace = Trace::new(ctx.instance.tracer.as_ref());
    let mut span = trace.span_linked(
        "recover pedido",
        SpanKind::Internal,
        pedido.traceparent.as_deref(),
    );
    span.set_with(|| {
        vec![
            KeyValue::new("pedido.id", id),
            KeyValue::new("pedido.estado", <&str>::from(pedido.etapa.estado())),
        ]
    });
    let settled = trace.under(&span).scope(settle_held(ctx, pedido)).await;
    if let Err(e) = &settled {
        span.fail(|| e.to_string());
    }
    settled
}

async fn settle_held<P: PeerApi, S: Store>(
    ctx: &SagaContext<'_, P, S>,
    pedido: Pedido,
) -> Result<bool, ApiError> {
    let id = pedido.id;
    log::info!(
        target: LOG_TARGET,
        "recovery moves pedido {id} on from {} (placed by request {})",
        <&str>::from(&pedido.etapa),
        pedido.request_id.as_deref().unwrap_or("unknown")
    );
    let pedido = saga::advance(ctx, pedido, false).await?;
    if pedido.is_over() {
        let estado: &str = pedido.etapa.estado().into();
        ctx.instance.metrics.recovered.with_label_values(&[estado]).inc();
        log::info!(target: LOG_TARGET, "recovery finished pedido {id}: {estado}");
    }
    Ok(pedido.is_over())
}
