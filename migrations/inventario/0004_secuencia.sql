-- Every change made for pedidos (the client that names the changes' keys) is numbered
-- in the order it was made, and each row keeps the number of its last change: a client
-- that remembers the highest number it was answered can tell when this database is an
-- older copy of itself, and list what changed after a number it knows.
CREATE TABLE secuencia (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    n          INTEGER NOT NULL,
    -- `n` when the service last started: a database restored from a copy starts at the
    -- copy's number, before any change asked of it can be numbered.
    al_iniciar INTEGER,
    -- The highest number a caller had seen when it found this database behind it (a
    -- restored copy): kept until the caller has healed it and raised `n`.
    rezagada   INTEGER
);
INSERT INTO secuencia (id, n) VALUES (1, 0);

ALTER TABLE reservas ADD COLUMN secuencia INTEGER NOT NULL DEFAULT 0;
CREATE INDEX reservas_por_secuencia ON reservas (secuencia) WHERE lote IS NOT NULL;
