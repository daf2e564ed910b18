//! Orders as stored and shown, and the body that asks for one.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::input::{self, present};
use crate::money::Money;

/// The most lines one order may have.
pub const MAX_ITEMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoPedido {
    /// Written before the first peer call; final states replace it when the flow ends.
    Pendiente,
    Confirmado,
    Rechazado,
    Fallido,
}

impl EstadoPedido {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pendiente => "pendiente",
            Self::Confirmado => "confirmado",
            Self::Rechazado => "rechazado",
            Self::Fallido => "fallido",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pendiente" => Some(Self::Pendiente),
            "confirmado" => Some(Self::Confirmado),
            "rechazado" => Some(Self::Rechazado),
            "fallido" => Some(Self::Fallido),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PedidoItem {
    pub producto_id: i64,
    pub cantidad: i64,
    /// `None` until productos gave the price.
    pub precio_unitario: Option<Money>,
    pub subtotal: Option<Money>,
    /// `None` until inventario reserved the units.
    pub reserva_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pedido {
    pub id: i64,
    pub estado: EstadoPedido,
    pub total: Money,
    pub moneda: String,
    pub medio: String,
    pub items: Vec<PedidoItem>,
    pub pago_id: Option<i64>,
    pub creado_en: String,
    /// Why an order did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motivo: Option<String>,
}

/// The body of `POST /pedidos`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PedidoBody {
    items: Vec<ItemBody>,
    pago: PagoBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    producto_id: i64,
    cantidad: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PagoBody {
    medio: String,
    moneda: String,
    #[serde(default, deserialize_with = "present")]
    fail: Option<bool>,
}

/// One line of a valid order.
#[derive(Debug, Clone, Copy)]
pub struct Linea {
    pub producto_id: i64,
    pub cantidad: i64,
}

/// A valid order to place: lines of distinct products, and how to pay.
#[derive(Debug, Clone)]
pub struct NuevoPedido {
    pub lineas: Vec<Linea>,
    pub medio: String,
    pub moneda: String,
    /// The original design's controlled failure: ask pagos to reject the charge.
    pub fail: bool,
}

impl NuevoPedido {
    /// Validates an order. Lines for the same product are merged into one, in the
    /// place of the first, with their quantities added.
    pub fn parse(body: PedidoBody) -> Result<Self, ApiError> {
        if body.items.is_empty() {
            return Err(ApiError::unprocessable(
                "invalid_value",
                "items must not be empty",
            ));
        }
        if body.items.len() > MAX_ITEMS {
            return Err(ApiError::unprocessable(
                "invalid_value",
                format!("an order has at most {MAX_ITEMS} items"),
            ));
        }
        let mut lineas: Vec<Linea> = Vec::with_capacity(body.items.len());
        for item in body.items {
            let producto_id = input::id("producto_id", item.producto_id)?;
            let cantidad = input::cantidad("cantidad", item.cantidad, 1)?;
            match lineas.iter_mut().find(|l| l.producto_id == producto_id) {
                Some(linea) => linea.cantidad = input::cantidad("cantidad", linea.cantidad + cantidad, 1)?,
                None => lineas.push(Linea {
                    producto_id,
                    cantidad,
                }),
            }
        }
        Ok(Self {
            lineas,
            medio: input::text("medio", &body.pago.medio)?,
            moneda: input::text("moneda", &body.pago.moneda)?,
            fail: body.pago.fail.unwrap_or(false),
        })
    }
}
