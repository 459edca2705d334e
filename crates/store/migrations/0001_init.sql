-- Every resource is a JSON document addressed by kind and id, indexed by
-- owner (tenancy), parent (children listing) and a lower-cased search text.
CREATE TABLE objects (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    parent      TEXT,
    search      TEXT NOT NULL,
    body        TEXT NOT NULL,
    create_rev  INTEGER NOT NULL,
    mod_rev     INTEGER NOT NULL
);
CREATE INDEX objects_kind_owner ON objects (kind, owner);
CREATE INDEX objects_parent ON objects (parent, kind);

-- Uniqueness claims ("port/lb-1/tcp/80" → vs-2): the compare-and-swap keys
-- that keep uniqueness rules true under concurrent writers.
CREATE TABLE claims (
    key     TEXT PRIMARY KEY,
    holder  TEXT NOT NULL
);
CREATE INDEX claims_holder ON claims (holder);

-- The change feed: what each revision changed.
CREATE TABLE changes (
    rev   INTEGER NOT NULL,
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    op    TEXT NOT NULL
);
CREATE INDEX changes_rev ON changes (rev);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 0);
