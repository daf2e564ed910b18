//! penguin's API tests: every test starts its own real servers on port 0 with its own
//! temporary databases, so tests share nothing and run in parallel.

mod auth;
mod breaker;
mod chaos;
mod cli;
mod crash;
mod deploy;
mod docs;
mod edges;
mod expiry;
mod faults;
mod fuzz;
mod helpers;
mod hosts;
mod idempotencia;
mod image;
mod inventario;
mod loadgen;
mod lotes;
mod openapi;
mod operability;
mod original;
mod pages;
mod pagos;
mod panel;
mod pedidos;
mod podman;
mod productos;
mod readme;
mod resilience;
mod restore;
mod saga;
mod secuencia;
mod shop;
mod shutdown;
mod traces;
