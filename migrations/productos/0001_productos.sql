-- The catalog. precio is an integer number of hundredths.
CREATE TABLE productos (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    nombre TEXT    NOT NULL CHECK (length(nombre) > 0),
    precio INTEGER NOT NULL CHECK (precio >= 0)
);
