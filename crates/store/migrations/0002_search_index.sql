-- Lists filter by kind and owner and search with LIKE '%…%': a covering
-- index lets SQLite scan only (kind, owner, search) instead of every row's
-- JSON body.
CREATE INDEX objects_kind_owner_search ON objects (kind, owner, search);
DROP INDEX objects_kind_owner;
