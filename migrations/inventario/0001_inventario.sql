-- Stock per product. cantidad is what can still be reserved; reservado is what
-- active reservations hold. Both are whole units.
CREATE TABLE stock (
    producto_id INTEGER PRIMARY KEY,
    cantidad    INTEGER NOT NULL CHECK (cantidad >= 0),
    reservado   INTEGER NOT NULL DEFAULT 0 CHECK (reservado >= 0)
);

CREATE TABLE reservas (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    producto_id INTEGER NOT NULL REFERENCES stock (producto_id),
    cantidad    INTEGER NOT NULL CHECK (cantidad > 0),
    estado      TEXT    NOT NULL DEFAULT 'activa' CHECK (estado IN ('activa', 'liberada')),
    creada_en   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX reservas_por_producto ON reservas (producto_id, estado);
