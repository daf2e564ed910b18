-- How many reservations stand in each estado, kept as they change, so that a scrape of
-- /metrics reads four rows instead of every reservation ever made.
CREATE TABLE reservas_por_estado (
    estado TEXT    PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO reservas_por_estado (estado, n)
SELECT estado, count(*) FROM reservas GROUP BY estado;

CREATE TRIGGER reservas_por_estado_alta AFTER INSERT ON reservas
BEGIN
    INSERT INTO reservas_por_estado (estado, n) VALUES (new.estado, 1)
    ON CONFLICT (estado) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER reservas_por_estado_cambio AFTER UPDATE OF estado ON reservas
WHEN old.estado <> new.estado
BEGIN
    UPDATE reservas_por_estado SET n = n - 1 WHERE estado = old.estado;
    INSERT INTO reservas_por_estado (estado, n) VALUES (new.estado, 1)
    ON CONFLICT (estado) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER reservas_por_estado_baja AFTER DELETE ON reservas
BEGIN
    UPDATE reservas_por_estado SET n = n - 1 WHERE estado = old.estado;
END;
