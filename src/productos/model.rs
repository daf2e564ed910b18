//! Products as stored and shown, and the bodies that create or change them.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::input::{self, present};
use crate::money::{Money, MoneyInput};

#[derive(Debug, Clone, Serialize)]
pub struct Producto {
    pub id: i64,
    pub nombre: String,
    pub precio: Money,
}

/// The body of `POST /productos`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NuevoProductoBody {
    nombre: String,
    precio: MoneyInput,
}

/// The body of `PUT /productos/{id}`: any of the fields, none of them `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CambioProductoBody {
    #[serde(default, deserialize_with = "present")]
    nombre: Option<String>,
    #[serde(default, deserialize_with = "present")]
    precio: Option<MoneyInput>,
}

/// A valid new product.
#[derive(Debug)]
pub struct NuevoProducto {
    pub nombre: String,
    pub precio: Money,
}

/// A valid change to a product; `None` keeps the current value.
#[derive(Debug)]
pub struct CambioProducto {
    pub nombre: Option<String>,
    pub precio: Option<Money>,
}

fn precio(value: MoneyInput) -> Result<Money, ApiError> {
    let precio = value
        .0
        .map_err(|e| ApiError::unprocessable("invalid_value", format!("precio {e}")))?;
    if precio.is_negative() {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "precio must be 0 or more",
        ));
    }
    Ok(precio)
}

impl NuevoProducto {
    pub fn parse(body: NuevoProductoBody) -> Result<Self, ApiError> {
        Ok(Self {
            nombre: input::text("nombre", &body.nombre)?,
            precio: precio(body.precio)?,
        })
    }
}

impl CambioProducto {
    pub fn parse(body: CambioProductoBody) -> Result<Self, ApiError> {
        Ok(Self {
            nombre: body.nombre.map(|n| input::text("nombre", &n)).transpose()?,
            precio: body.precio.map(precio).transpose()?,
        })
    }
}
