-- Sample "shop" database for trying Epoch (loaded once by scripts/run.sh).
-- Deterministic: the same rows every time (no random()).

CREATE TABLE users (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text        NOT NULL UNIQUE,
    full_name   text        NOT NULL,
    country     char(2)     NOT NULL,
    created_at  timestamptz NOT NULL,
    is_active   boolean     NOT NULL DEFAULT true
);

CREATE TABLE products (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text          NOT NULL UNIQUE,
    name        text          NOT NULL,
    category    text          NOT NULL,
    price       numeric(10,2) NOT NULL CHECK (price >= 0),
    stock       integer       NOT NULL CHECK (stock >= 0)
);

CREATE TABLE orders (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     integer     NOT NULL REFERENCES users (id),
    status      text        NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    ordered_at  timestamptz NOT NULL
);

CREATE TABLE order_items (
    order_id    integer       NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id  integer       NOT NULL REFERENCES products (id),
    quantity    integer       NOT NULL CHECK (quantity > 0),
    unit_price  numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE INDEX order_items_product_id_idx ON order_items (product_id);

INSERT INTO users (email, full_name, country, created_at, is_active)
SELECT format('%s.%s%s@example.com', lower(f), lower(l), g),
       f || ' ' || l,
       (ARRAY['DE', 'FR', 'US', 'GB', 'NL', 'ES', 'IT', 'PL'])[1 + g % 8],
       timestamptz '2023-01-01 09:00:00+00' + g * interval '37 hours',
       g % 13 <> 0
FROM generate_series(1, 200) AS g,
     LATERAL (SELECT (ARRAY['Anna', 'Ben', 'Clara', 'David', 'Eva', 'Felix', 'Greta', 'Hugo',
                            'Ines', 'Jonas', 'Karla', 'Luis'])[1 + g % 12] AS f,
                     (ARRAY['Meyer', 'Schmidt', 'Dubois', 'Smith', 'Jansen', 'Garcia', 'Rossi',
                            'Nowak', 'Brown', 'Martin', 'Keller'])[1 + (g * 7) % 11] AS l) AS n;

INSERT INTO products (sku, name, category, price, stock)
SELECT format('SKU-%s-%s', upper(left(c, 3)), lpad(g::text, 4, '0')),
       initcap(adj) || ' ' || c || ' ' || g,
       c,
       round((4.99 + (g * 7919) % 24000 / 100.0)::numeric, 2),
       (g * 31) % 250
FROM generate_series(1, 100) AS g,
     LATERAL (SELECT (ARRAY['mug', 'notebook', 'backpack', 'lamp', 'headphones', 'keyboard',
                            't-shirt', 'water bottle'])[1 + g % 8] AS c,
                     (ARRAY['classic', 'compact', 'deluxe', 'eco', 'pro', 'travel'])[1 + g % 6] AS adj) AS n;

INSERT INTO orders (user_id, status, ordered_at)
SELECT 1 + (g * 7) % 200,
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'delivered', 'delivered', 'cancelled'])[1 + g % 7],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '5 hours 17 minutes'
FROM generate_series(1, 500) AS g;

INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT o.id, p.id, 1 + (o.id + i) % 4, p.price
FROM orders AS o
CROSS JOIN LATERAL generate_series(1, 1 + o.id % 3) AS i
JOIN products AS p ON p.id = 1 + (o.id * 13 + i * 29) % 100;

ANALYZE users, products, orders, order_items;

CREATE VIEW order_totals AS
SELECT o.id AS order_id, u.email, o.status, o.ordered_at,
       sum(oi.quantity * oi.unit_price) AS total
FROM orders AS o
JOIN users AS u ON u.id = o.user_id
JOIN order_items AS oi ON oi.order_id = o.id
GROUP BY o.id, u.email, o.status, o.ordered_at;
