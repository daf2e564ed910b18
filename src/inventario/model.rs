//! Stock rows, reservations, and the bodies that change them.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::input;

/// A product's stock: `cantidad` can still be reserved, `reservado` is held by active reservations.
#[derive(Debug, Clone, Serialize)]
pub struct Stock {
    pub producto_id: i64,
    pub cantidad: i64,
    pub reservado: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoReserva {
    Activa,
    Liberada,
}

impl EstadoReserva {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "activa" => Some(Self::Activa),
            "liberada" => Some(Self::Liberada),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Reserva {
    pub reserva_id: i64,
    pub producto_id: i64,
    pub cantidad: i64,
    pub estado: EstadoReserva,
}

/// The body of `POST /stock` and of `POST /reservar`: a product and a number of units.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnidadesBody {
    producto_id: i64,
    cantidad: i64,
}

/// The body of `POST /liberar`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiberarBody {
    pub reserva_id: i64,
}

/// A valid number of units of one product.
#[derive(Debug, Clone, Copy)]
pub struct Unidades {
    pub producto_id: i64,
    pub cantidad: i64,
}

impl Unidades {
    /// Stock to set: zero units allowed.
    pub fn stock(body: UnidadesBody) -> Result<Self, ApiError> {
        Self::parse(body, 0)
    }

    /// Units to reserve: at least one.
    pub fn reserva(body: UnidadesBody) -> Result<Self, ApiError> {
        Self::parse(body, 1)
    }

    fn parse(body: UnidadesBody, min: i64) -> Result<Self, ApiError> {
        Ok(Self {
            producto_id: input::id("producto_id", body.producto_id)?,
            cantidad: input::cantidad("cantidad", body.cantidad, min)?,
        })
    }
}
