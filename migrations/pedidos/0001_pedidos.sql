-- Orders and their lines. Money is an integer number of hundredths. An order is
-- written as 'pendiente' before its first peer call and given its final estado
-- (confirmado, rechazado, fallido) when the flow ends.
CREATE TABLE pedidos (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    estado    TEXT    NOT NULL CHECK (estado IN ('pendiente', 'confirmado', 'rechazado', 'fallido')),
    total     INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
    moneda    TEXT    NOT NULL,
    medio     TEXT    NOT NULL,
    pago_id   INTEGER,
    motivo    TEXT,
    creado_en TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE pedido_items (
    pedido_id       INTEGER NOT NULL REFERENCES pedidos (id),
    linea           INTEGER NOT NULL,
    producto_id     INTEGER NOT NULL,
    cantidad        INTEGER NOT NULL CHECK (cantidad > 0),
    precio_unitario INTEGER,
    reserva_id      INTEGER,
    PRIMARY KEY (pedido_id, linea)
) WITHOUT ROWID;
