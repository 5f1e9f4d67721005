-- Indexes for the API's default list orders within an organization: a page of a 70k-product
-- organization sorted by name was a sort of every row (33 ms); with these it is an index scan.
create index if not exists products_organization_id_name_idx
on public.products (organization_id, name, id);

create index if not exists products_organization_id_created_at_idx
on public.products (organization_id, created_at desc, id);

create index if not exists orders_organization_id_created_at_idx
on public.orders (organization_id, created_at desc, id);
