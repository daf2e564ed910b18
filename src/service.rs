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

    /// The original design's port: 5001 to 5004.
    pub fn default_port(self) -> u16 {
        5001 + self.offset()
    }
}
