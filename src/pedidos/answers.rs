//! What pedidos reads from its peers: the answers of productos, inventario and pagos
//! (to its flow, its recovery and its status page alike), and the error shape of a
//! refusal. Read tolerantly: only the fields pedidos uses are required.

use serde::Deserialize;

use crate::error::ErrorCode;
use crate::money::Money;
use crate::secuencia::SequenceState;

/// A product as productos answers it.
#[derive(Debug, Deserialize)]
pub struct ProductoAnswer {
    pub id: i64,
    /// Only the panel shows it; the flow needs the id and the price.
    #[serde(default)]
    pub nombre: String,
    pub precio: Money,
}

/// inventario's answer about an order's lote: the reservation of each line.
#[derive(Debug, Clone, Deserialize)]
pub struct LoteAnswer {
    pub estado: EstadoLote,
    pub reservas: Vec<ReservaAnswer>,
    /// The number of the change it reports (see `secuencia`); none from an
    /// inventario that does not number them.
    #[serde(default)]
    pub secuencia: Option<i64>,
}

/// Whether a lote holds its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoLote {
    Activa,
    Confirmada,
    Liberada,
    Expirada,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReservaAnswer {
    pub reserva_id: i64,
}

impl LoteAnswer {
    /// The reservation ids, one per line.
    pub fn ids(&self) -> Vec<i64> {
        self.reservas.iter().map(|r| r.reserva_id).collect()
    }

    /// A lote reserved line by line, as if inventario had answered it.
    pub(super) fn line_by_line(estado: EstadoLote, ids: &[i64]) -> Self {
        Self {
            secuencia: None,
            estado,
            reservas: ids
                .iter()
                .map(|&reserva_id| ReservaAnswer { reserva_id })
                .collect(),
        }
    }
}

/// What pagos says a referencia's payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoPago {
    Aprobado,
    Rechazado,
    /// Not a charge: the referencia was voided, so no charge can be made with it.
    Anulado,
    /// An approved charge whose money was given back.
    Reembolsado,
}

/// pagos' answer about a charge. Only the estado is required: the Flask demo's pagos,
/// which may stand in for penguin's, answers nothing else.
#[derive(Debug, Clone, Deserialize)]
pub struct PagoAnswer {
    #[serde(default)]
    pub pago_id: Option<i64>,
    pub estado: EstadoPago,
    /// The number of the change it reports (see `secuencia`).
    #[serde(default)]
    pub secuencia: Option<i64>,
}

/// What `GET /cambios` answers at inventario.
#[derive(Debug, Clone, Deserialize)]
pub struct LotesListed {
    #[serde(flatten)]
    pub sequence: SequenceState,
    pub lotes: Vec<ListedLote>,
}

/// A lote as inventario lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedLote {
    pub clave: String,
    pub estado: EstadoLote,
    pub reservas: Vec<ListedReserva>,
    #[serde(default)]
    pub secuencia: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ListedReserva {
    pub reserva_id: i64,
    pub producto_id: Option<i64>,
    pub cantidad: i64,
}

/// What `GET /cambios` answers at pagos.
#[derive(Debug, Clone, Deserialize)]
pub struct PagosListed {
    #[serde(flatten)]
    pub sequence: SequenceState,
    pub pagos: Vec<ListedPago>,
}

/// A payment as pagos lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedPago {
    pub pago_id: i64,
    pub estado: EstadoPago,
    pub monto: Money,
    pub moneda: String,
    pub medio: String,
    #[serde(default)]
    pub referencia: Option<String>,
    #[serde(default)]
    pub secuencia: Option<i64>,
}

/// A product's units as inventario answers them.
#[derive(Debug, Deserialize)]
pub struct StockAnswer {
    pub producto_id: i64,
    pub cantidad: i64,
    pub reservado: i64,
    pub confirmado: i64,
}

/// A peer's `GET /ready`.
#[derive(Debug, Deserialize)]
pub struct ReadyAnswer {
    pub status: String,
    pub version: Option<String>,
    pub schema_version: Option<u64>,
}

/// penguin's error shape, `{"error", "detail"}`; either may be missing from another
/// implementation's answer.
#[derive(Debug, Deserialize)]
pub struct ErrorAnswer {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub detail: String,
}

/// A peer's error code: one of penguin's, or another implementation's, kept as sent
/// (empty when the answer had none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCode {
    Known(ErrorCode),
    Other(String),
}

impl PeerCode {
    pub fn parse(code: &str) -> Self {
        code.parse()
            .map_or_else(|_| Self::Other(code.to_string()), Self::Known)
    }

    /// Whether it is `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        *self == Self::Known(code)
    }
}

impl std::fmt::Display for PeerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Known(code) => f.write_str(code.into()),
            Self::Other(code) => f.write_str(code),
        }
    }
}
