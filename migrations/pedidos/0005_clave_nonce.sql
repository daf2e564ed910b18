-- A random number drawn for each order, part of the key its peers know it by
-- (`<prefijo>-<id>-<nonce>`): a database restored from an older copy hands out
-- ids again, but never a key a peer has already seen. Orders recorded before
-- keep the key they were given (`<prefijo>-<id>`).
ALTER TABLE pedidos ADD COLUMN nonce INTEGER;
