-- An SQLite workload for the preload tests: builds a table of generated rows, indexes it, and
-- runs aggregate, join and sort queries whose output must not depend on the allocator.
PRAGMA cache_size = -20000;
CREATE TABLE items(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, price REAL);
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200000)
INSERT INTO items SELECT n, n % 97, printf('item-%08d-%s', (n * 7919) % 1000003, hex(n * 31)),
  (n % 1000) / 10.0 FROM seq;
CREATE INDEX items_by_name ON items(name);
CREATE TABLE groups(grp INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 96)
INSERT INTO groups SELECT n, 'group ' || n FROM seq;
SELECT g.label, count(*), round(sum(i.price), 2), min(i.name)
  FROM items i JOIN groups g USING (grp) GROUP BY g.label ORDER BY 3 DESC LIMIT 10;
SELECT name FROM items WHERE name LIKE 'item-0000%' ORDER BY name LIMIT 5;
SELECT count(DISTINCT substr(name, 6, 4)), group_concat(DISTINCT grp % 5) FROM items;
UPDATE items SET name = name || '-updated' WHERE id % 3 = 0;
DELETE FROM items WHERE id % 5 = 0;
VACUUM;
SELECT count(*), sum(length(name)) FROM items;
