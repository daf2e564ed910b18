//! Builds one service or all four on already-bound listeners and serves them until
//! SIGTERM or Ctrl-C, then drains (see `shutdown`).
//!
//! [`start`] binds the ports and opens the databases first, so a taken port or an
//! unwritable file stops everything with one clear message before any service runs;
//! the bound addresses are then known, which lets tests ask for port 0.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;

use crate::auth::{ServiceToken, require_token};
use crate::config::{PeerSettings, ServiceSettings, Settings, Target};
use crate::error::{not_found, path_config, query_config};
use crate::metrics::Metrics;
use crate::middleware::InFlight;
use crate::service::Service;
use crate::shutdown::{self, Stop, StopSender};
use crate::{db, health, inventario, middleware, openapi, pagos, pedidos, productos};

/// The services of one `penguin serve`, bound and ready to run.
pub struct Started {
    servers: Vec<Bound>,
    stop: StopSender,
    grace: Duration,
}

/// One service's server and the requests it is answering.
struct Bound {
    service: Service,
    addr: SocketAddr,
    server: Server,
    in_flight: Arc<InFlight>,
    pool: db::Pool,
    /// Its spans on their way to a collector, if one is named.
    spans: Option<crate::telemetry::Spans>,
}

impl Started {
    /// The address a service listens on.
    pub fn addr(&self, service: Service) -> Option<SocketAddr> {
        self.servers.iter().find(|b| b.service == service).map(|b| b.addr)
    }

    /// The URL a peer or a client uses to reach a service.
    pub fn url(&self, service: Service) -> Option<String> {
        self.addr(service).map(url_of)
    }

    /// Serves until SIGTERM or Ctrl-C, then drains.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then drains: stops the background loops, stops
    /// accepting and lets the requests in flight finish within the grace period —
    /// pedidos first, since its orders need their peers to the end — then closes
    /// the connections left idle.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let Started {
            servers,
            stop: loops,
            grace,
        } = self;
        let draining: Vec<_> = servers
            .iter()
            .map(|b| (b.service, b.server.handle(), b.in_flight.clone()))
            .collect();
        let pools: Vec<_> = servers.iter().map(|b| b.pool.clone()).collect();
        let spans: Vec<_> = servers.iter().filter_map(|b| b.spans.clone()).collect();
        let mut serving = std::pin::pin!(futures_util::future::try_join_all(
            servers.into_iter().map(|b| b.server)
        ));
        tokio::select! {
            served = &mut serving => return served.map(drop),
            () = stop => {}
        }
        // The servers' own futures carry out their commands (pause, stop): they are
        // polled beside the drain.
        let drained = async {
            log::info!(
                "draining: accepting no more connections, answering the requests in flight for up to {} s, \
                 stopping recovery and expiry",
                grace.as_secs_f64()
            );
            loops.send();
            let started = Instant::now();
            let deadline = started + grace;
            for first in [true, false] {
                let wave = draining
                    .iter()
                    .filter(|(s, ..)| (*s == Service::Pedidos) == first);
                for (service, handle, in_flight) in wave {
                    handle.pause().await;
                    let waiting = in_flight.count();
                    match in_flight
                        .drain(deadline.saturating_duration_since(Instant::now()))
                        .await
                    {
                        0 if waiting == 0 => {}
                        0 => log::info!(
                            target: service.name(),
                            "shutting down: answered the {waiting} requests in flight, {} ms after the signal",
                            started.elapsed().as_millis()
                        ),
                        left => log::warn!(
                            target: service.name(),
                            "shutting down: the grace period ({} s) is over; {left} requests are cut off",
                            grace.as_secs_f64()
                        ),
                    }
                }
            }
            // Let the last answers reach their sockets before the idle connections close.
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            for (_, handle, _) in &draining {
                handle.stop(false).await;
            }
        };
        let (served, ()) = futures_util::future::join(&mut serving, drained).await;
        // Everything committed moves into the database file itself, so a stopped
        // service's file is whole without its `-wal` beside it (a copy is a backup).
        futures_util::future::join_all(pools.iter().map(db::Pool::checkpoint)).await;
        // The last spans go to their collector, which is given a second at most: the
        // services' exporters stop side by side, so the wait is one second, not four.
        futures_util::future::join_all(
            spans
                .into_iter()
                .map(|spans| actix_web::rt::task::spawn_blocking(move || spans.stop(Duration::from_secs(1)))),
        )
        .await;
        served.map(drop)
    }
}

/// `http://addr`, with an unspecified address (0.0.0.0, ::) replaced by loopback.
fn url_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn schema(service: Service) -> db::Schema {
    match service {
        Service::Productos => productos::schema(),
        Service::Inventario => inventario::schema(),
        Service::Pagos => pagos::schema(),
        Service::Pedidos => pedidos::schema(),
    }
}

/// The OpenAPI document of a service's own routes.
fn api(service: Service) -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    match service {
        Service::Productos => productos::Api::openapi(),
        Service::Inventario => inventario::Api::openapi(),
        Service::Pagos => pagos::Api::openapi(),
        Service::Pedidos => pedidos::Api::openapi(),
    }
}

/// Binds every service's port, opens its database and builds its server.
/// Must run inside an actix (tokio) runtime; the servers start when [`Started::run`] is polled.
pub fn start(settings: &Settings) -> anyhow::Result<Started> {
    let mut bound = Vec::with_capacity(settings.services.len());
    for service in &settings.services {
        let listener = TcpListener::bind(service.addr)
            .with_context(|| format!("{}: cannot listen on {}", service.service, service.addr))?;
        let addr = listener.local_addr()?;
        bound.push((service, listener, addr));
    }

    let mut peers = settings.peers.clone();
    if settings.target == Target::All {
        let sibling = |wanted: Service| {
            bound
                .iter()
                .find(|(s, ..)| s.service == wanted)
                .map(|(.., addr)| url_of(*addr))
                .unwrap_or_default()
        };
        peers.products_url = sibling(Service::Productos);
        peers.inventory_url = sibling(Service::Inventario);
        peers.payments_url = sibling(Service::Pagos);
    }

    let (stop_sender, stop) = Stop::new();
    let mut servers = Vec::with_capacity(bound.len());
    for (service, listener, addr) in bound {
        let name = service.service;
        let mut metrics = Metrics::new(name).with_context(|| name.to_string())?;
        let pool = db::open(
            &service.db_path,
            &schema(name),
            &metrics,
            service.write_queue,
            service.wal_autocheckpoint,
        )
        .with_context(|| name.to_string())?;
        if matches!(name, Service::Inventario | Service::Pagos) {
            let conn = pool.get().with_context(|| name.to_string())?;
            crate::secuencia::started(&conn).with_context(|| name.to_string())?;
        }
        let spans = match &service.traces {
            Some(traces) => Some(
                crate::telemetry::Spans::start(traces, name, &metrics)
                    .with_context(|| format!("{name}: cannot send spans to {}", traces.endpoint))?,
            ),
            None => None,
        };
        let tracer = spans.as_ref().map(|s| s.tracer().clone());
        let state = State::start(
            service,
            &pool,
            &peers,
            settings.reservation_ttl,
            &stop,
            &mut metrics,
            tracer.clone(),
        )
        .with_context(|| name.to_string())?;
        let in_flight = Arc::new(InFlight::default());
        let server = build_server(
            service,
            listener,
            pool.clone(),
            state,
            in_flight.clone(),
            Arc::new(metrics),
            tracer,
        )
        .with_context(|| format!("{name}: cannot start"))?;
        servers.push(Bound {
            service: name,
            addr,
            server,
            in_flight,
            pool,
            spans,
        });
    }
    Ok(Started {
        servers,
        stop: stop_sender,
        grace: settings.shutdown_grace,
    })
}

/// What a service's app holds beside its pool: built once, shared by its workers.
#[derive(Clone)]
enum State {
    Productos(Arc<productos::Catalog>),
    Inventario(inventario::ReservationTtl),
    Pagos,
    Pedidos {
        instance: Arc<pedidos::Instance>,
        breakers: pedidos::Breakers,
        peers: Arc<PeerSettings>,
    },
}

impl State {
    /// Loads what the service keeps in memory, registers its own metrics and starts
    /// its background work: reservation expiry (inventario), recovery (pedidos).
    fn start(
        service: &ServiceSettings,
        pool: &db::Pool,
        peers: &PeerSettings,
        reservation_ttl: Duration,
        stop: &Stop,
        metrics: &mut Metrics,
        tracer: Option<crate::trace::Tracer>,
    ) -> anyhow::Result<Self> {
        Ok(match service.service {
            Service::Productos => Self::Productos(Arc::new(productos::Catalog::load(pool)?)),
            Service::Inventario => {
                inventario::register_metrics(metrics)?;
                inventario::spawn_expiry(pool.clone(), reservation_ttl, stop.clone());
                Self::Inventario(inventario::ReservationTtl(reservation_ttl))
            }
            Service::Pagos => Self::Pagos,
            Service::Pedidos => {
                let own = Arc::new(pedidos::PedidosMetrics::register(metrics)?);
                let sampled = own.clone();
                metrics.sample_with(Arc::new(move |conn| sampled.sample(conn)));
                let breakers = pedidos::Breakers::new(peers, &own);
                let instance = Arc::new(pedidos::Instance::load(pool, peers.order_deadline, own, tracer)?);
                pedidos::spawn_recovery(
                    pool.clone(),
                    instance.clone(),
                    peers.clone(),
                    service.token.clone(),
                    breakers.clone(),
                    stop.clone(),
                );
                Self::Pedidos {
                    instance,
                    breakers,
                    peers: Arc::new(peers.clone()),
                }
            }
        })
    }

    /// The service's route table, and its state as one worker's app data.
    fn configure(&self, token: &str, cfg: &mut web::ServiceConfig) {
        match self {
            Self::Productos(catalog) => {
                cfg.app_data(web::Data::from(catalog.clone()));
                productos::configure(cfg);
            }
            Self::Inventario(ttl) => {
                cfg.app_data(web::Data::new(*ttl));
                inventario::configure(cfg);
            }
            Self::Pagos => pagos::configure(cfg),
            Self::Pedidos {
                instance,
                breakers,
                peers,
            } => {
                // awc clients are not Send: each worker builds its own around the shared breakers.
                let peers =
                    pedidos::Peers::new(peers, token, breakers, &instance.line_by_line, &instance.metrics);
                let circuits = breakers.clone();
                let circuits = health::Circuits(Arc::new(move || {
                    serde_json::to_value(circuits.status()).unwrap_or_default()
                }));
                cfg.app_data(web::Data::new(peers))
                    .app_data(web::Data::new(breakers.clone()))
                    .app_data(web::Data::from(instance.clone()))
                    .app_data(web::Data::new(circuits));
                pedidos::configure(cfg);
            }
        }
    }
}

fn build_server(
    settings: &ServiceSettings,
    listener: TcpListener,
    pool: db::Pool,
    state: State,
    in_flight: Arc<InFlight>,
    metrics: Arc<Metrics>,
    tracer: Option<crate::trace::Tracer>,
) -> std::io::Result<Server> {
    let service = settings.service;
    let token = settings.token.clone();
    let pool = web::Data::new(pool);
    let service_token = web::Data::new(ServiceToken::new(&token));
    let document = web::Data::new(openapi::Document::new(service, api(service)));
    let context = web::Data::new(middleware::RequestContext {
        service,
        request_timeout: settings.request_timeout,
        in_flight,
        metrics: metrics.clone(),
        tracer,
    });
    let metrics = web::Data::from(metrics);

    let server = HttpServer::new(move || {
        App::new()
            .app_data(pool.clone())
            .app_data(service_token.clone())
            .app_data(context.clone())
            .app_data(metrics.clone())
            .app_data(document.clone())
            .app_data(web::Data::new(service))
            .app_data(path_config())
            .app_data(query_config())
            .configure(health::configure)
            .configure(health::configure_metrics)
            .configure(openapi::configure)
            .configure(|cfg| state.configure(&token, cfg))
            .default_service(web::to(not_found))
            .wrap(from_fn(require_token))
            .wrap(from_fn(middleware::around))
    })
    .workers(settings.workers)
    .keep_alive(Duration::from_secs(60))
    .client_request_timeout(Duration::from_secs(5))
    .client_disconnect_timeout(Duration::from_secs(1))
    // Shutdown is drained by `Started::run_until`, not by actix's own signal handling.
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}
