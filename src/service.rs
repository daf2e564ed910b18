//! The four services, named as their CLI subcommand, config file, migrations folder
//! and log target are: productos, inventario, pagos, pedidos.

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Service {
    Productos,
    Inventario,
    Pagos,
    Pedidos,
}

impl Service {
    pub const ALL: [Service; 4] = [Self::Productos, Self::Inventario, Self::Pagos, Self::Pedidos];

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Its place among the four: `serve all --base-port` gives it that port plus this.
    pub fn offset(self) -> u16 {
        self as u16
    }

    /// What its database files carry in their header (SQLite's `application_id`),
    /// so that no service opens another's.
    pub fn application_id(self) -> i32 {
        i32::from_be_bytes(match self {
            Self::Productos => *b"PNpr",
            Self::Inventario => *b"PNin",
            Self::Pagos => *b"PNpa",
            Self::Pedidos => *b"PNpe",
        })
    }

    /// The contract's port: 5001 to 5004, where `design-es.md`'s curl lines call.
    pub fn default_port(self) -> u16 {
        5001 + self.offset()
    }
}
