-- How many orders placed in each second stand in each estado now, kept as orders are
-- placed and move on, so that the status page reads the last minute's sixty seconds
-- instead of every order placed in it. `segundo` is `creado_en` to the second; a row
-- is dropped by recovery once its second is long past.
CREATE TABLE pedidos_por_segundo (
    segundo TEXT    NOT NULL,
    estado  TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (segundo, estado)
) WITHOUT ROWID;

INSERT INTO pedidos_por_segundo (segundo, estado, n)
SELECT substr(creado_en, 1, 19), CASE WHEN etapa = 'cerrado' THEN desenlace ELSE 'pendiente' END, count(*)
FROM pedidos
WHERE creado_en >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-120 seconds')
GROUP BY 1, 2;

CREATE TRIGGER pedidos_por_segundo_alta AFTER INSERT ON pedidos
BEGIN
    INSERT INTO pedidos_por_segundo (segundo, estado, n)
    VALUES (substr(new.creado_en, 1, 19),
            CASE WHEN new.etapa = 'cerrado' THEN new.desenlace ELSE 'pendiente' END, 1)
    ON CONFLICT (segundo, estado) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER pedidos_por_segundo_cambio AFTER UPDATE OF etapa, desenlace ON pedidos
WHEN (CASE WHEN old.etapa = 'cerrado' THEN old.desenlace ELSE 'pendiente' END)
     IS NOT (CASE WHEN new.etapa = 'cerrado' THEN new.desenlace ELSE 'pendiente' END)
BEGIN
    UPDATE pedidos_por_segundo SET n = n - 1
    WHERE segundo = substr(old.creado_en, 1, 19)
      AND estado = (CASE WHEN old.etapa = 'cerrado' THEN old.desenlace ELSE 'pendiente' END);
    INSERT INTO pedidos_por_segundo (segundo, estado, n)
    VALUES (substr(new.creado_en, 1, 19),
            CASE WHEN new.etapa = 'cerrado' THEN new.desenlace ELSE 'pendiente' END, 1)
    ON CONFLICT (segundo, estado) DO UPDATE SET n = n + 1;
END;
