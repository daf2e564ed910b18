-- The number inventario and pagos gave the last change each made for the order (see
-- `secuencia` in inventario and pagos): when either is restored from an older copy,
-- the orders whose changes it lost are those numbered after the copy's last.
ALTER TABLE pedidos ADD COLUMN secuencia_inventario INTEGER;
ALTER TABLE pedidos ADD COLUMN secuencia_pagos INTEGER;
-- The key the order is known by at its peers, when it is not `<prefijo>-<id>-<nonce>`:
-- an order this database lost (restored from an older copy) and learned back from its
-- peers under another id.
ALTER TABLE pedidos ADD COLUMN clave TEXT;

CREATE INDEX pedidos_por_secuencia_inventario ON pedidos (secuencia_inventario)
    WHERE secuencia_inventario IS NOT NULL;
CREATE INDEX pedidos_por_secuencia_pagos ON pedidos (secuencia_pagos) WHERE secuencia_pagos IS NOT NULL;
CREATE UNIQUE INDEX pedidos_por_clave ON pedidos (clave) WHERE clave IS NOT NULL;

-- A peer found restored from an older copy, while pedidos re-asserts at it what the
-- copy lost: the orders whose changes there are numbered after `desde` and up to
-- `hasta`. Kept until the peer is healed, so that a pedidos that stops halfway goes on.
CREATE TABLE curas (
    peer  TEXT    PRIMARY KEY CHECK (peer = 'inventario' OR peer = 'pagos'),
    desde INTEGER NOT NULL,
    hasta INTEGER NOT NULL
) WITHOUT ROWID;
