//! penguin: the penguin shop's four microservices in one binary.
//!
//! productos (catalog), inventario (stock and reservations), pagos (payments with
//! controlled failure) and pedidos (orders, orchestrating the other three over HTTP
//! with retries and a circuit breaker per peer). Each is its own actix-web server on
//! its own port with its own SQLite file; `penguin serve all` runs the four in one
//! process, `penguin serve <service>` one of them.
//!
//! # Layout
//!
//! - `service`: the four services' names and default ports.
//! - `cli`: the command line, its subcommands and the layers of their settings:
//!   defaults < `config/<service>.env` < `.env` < env < flags.
//! - `config`: `serve`'s settings and what they resolve to for each service.
//! - `startup`: binds, opens databases, builds one server per service, serves until shutdown.
//! - `shutdown`: SIGTERM or Ctrl-C drains requests in flight and stops background loops.
//! - `invariants`: `penguin check`, the shop's books checked over HTTP.
//! - `probe`: `penguin probe URL`, a health check for an image with no shell.
//! - `backup`: `penguin backup --to DIR`, consistent copies of the databases while serving.
//! - `logging`: console and `logs.log`, written off the request path.
//! - `trace`: request ids and W3C `traceparent`, carried by log lines and peer calls,
//!   and the spans they name; `otlp`: spans encoded as OTLP and posted to a collector;
//!   `telemetry`: the `OTEL_*` settings and the queue and thread that export spans.
//! - `error`: `ApiError` and the JSON error shape `{"error","detail"}`.
//! - `json`: the body extractor: JSON only, 64 KiB, objects for structs, exact decimals.
//! - `auth`: the bearer-token middleware shared by the four apps; `middleware`: the
//!   access log, request timeout and in-flight count every request goes through.
//! - `health`: `GET /health` (liveness) and `GET /ready` (readiness).
//! - `metrics`: `GET /metrics`, each service's metrics in Prometheus' text format.
//! - `openapi`: each service's OpenAPI 3.1 document (`GET /openapi.json`) and its page
//!   (`GET /docs`), from the services' handlers and types and the parts they share.
//! - `db`: pooled SQLite with PRAGMAs, embedded migrations, `run_blocking`, `run_write`,
//!   and the online copy `backup` takes.
//! - `clock`: the wall clock for stored deadlines; `pagination`: `?limit=&offset=`.
//! - `money`: exact amounts in integer hundredths.
//! - `input`: edge validation of names, ids and quantities.
//! - `secuencia`: the numbering of the changes inventario and pagos make for pedidos,
//!   which tells pedidos when either was restored from an older copy (`?visto=`,
//!   `GET /cambios`, `POST /secuencia`).
//! - `productos`, `inventario`, `pagos`, `pedidos`: one module per service, each with
//!   its route table (`configure`), handlers, SQL and models; pedidos adds its peer
//!   clients (behind the `PeerApi` trait) and their answers, the HTTP transport with
//!   retries and timeouts (`peer`), the circuit breakers (`breaker`),
//!   the order's decisions (`decide`, no I/O), the order flow that makes the calls and
//!   writes they ask for (`saga`) and the status page (`panel`).
//! - `simulation` (tests only): the whole shop in one thread, driven by a seed, that
//!   explores the saga through lost, duplicated and late calls, crashes and restores.

pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod input;
pub mod invariants;
pub mod inventario;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod money;
pub mod openapi;
pub mod otlp;
pub mod pagination;
pub mod pagos;
pub mod pedidos;
pub mod probe;
pub mod productos;
pub mod secuencia;
pub mod service;
pub mod shutdown;
#[cfg(test)]
mod simulation;
pub mod startup;
pub mod telemetry;
pub mod trace;
