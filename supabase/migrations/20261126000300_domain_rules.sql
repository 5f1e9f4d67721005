-- Domain rules: types returned by the stock RPCs.
--
-- public.low_stock_products(location_id) returns rows with a location_id column too; a function
-- cannot have an input and an output parameter of the same name, so its row type is declared
-- here instead of with `returns table`.

create type public.low_stock_product as (
  product_id uuid,
  sku text,
  name text,
  location_id uuid,
  on_hand numeric,
  reserved numeric,
  available numeric,
  threshold integer
);

comment on type public.low_stock_product is
'A row of low_stock_products(): a product at a location at or below its low-stock threshold.';
