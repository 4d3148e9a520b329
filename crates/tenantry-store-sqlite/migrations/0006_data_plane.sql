-- The data plane: physical vector indexes, tenant placements, documents, chunks with their
-- embeddings (little-endian f32 blobs; searched exactly, in Rust), and per-tenant usage counters
-- for exact quota enforcement.

create table vector_indexes (
    index_id    integer primary key autoincrement,
    index_name  text not null unique check (length(index_name) between 2 and 80 and index_name not glob '*[^a-z0-9_-]*'),
    kind        text not null check (kind in ('shared', 'dedicated')),
    capacity    integer not null check (capacity between 1 and 1000000),
    dimensions  integer not null check (dimensions between 1 and 16000),
    created_at  text not null
) strict;

create table tenant_placements (
    tenant_id   text primary key references tenants (tenant_id),
    index_name  text not null references vector_indexes (index_name),
    kind        text not null check (kind in ('namespace', 'dedicated')),
    placed_at   text not null
) strict;
create index tenant_placements_index_idx on tenant_placements (index_name);

create table documents (
    tenant_id        text not null references tenants (tenant_id),
    document_id      text not null check (document_id glob 'd-[0-9a-f]*' and document_id not glob 'd-*[^0-9a-f]*' and length(document_id) between 3 and 64),
    client_id        text check (client_id is null or length(client_id) between 1 and 200),
    title            text not null check (length(title) between 1 and 500),
    metadata         text not null default '{}' check (json_type(metadata) = 'object'),
    bytes            integer not null check (bytes >= 0),
    chunk_count      integer not null check (chunk_count >= 0),
    token_count      integer not null check (token_count >= 0),
    embedding_model  text not null check (length(embedding_model) between 1 and 200),
    object_key       text not null check (object_key = 'tenants/' || tenant_id || '/documents/' || document_id || '.json'),
    created_at       text not null,
    primary key (tenant_id, document_id),
    unique (tenant_id, client_id)
) strict;

create table chunks (
    tenant_id    text not null,
    index_name   text not null references vector_indexes (index_name),
    document_id  text not null,
    chunk_index  integer not null check (chunk_index >= 0),
    content      text not null,
    start_byte   integer not null check (start_byte >= 0),
    end_byte     integer not null check (end_byte >= start_byte),
    metadata     text not null default '{}' check (json_type(metadata) = 'object'),
    embedding    blob not null check (length(embedding) % 4 = 0 and length(embedding) > 0),
    primary key (tenant_id, document_id, chunk_index),
    foreign key (tenant_id, document_id) references documents (tenant_id, document_id) on delete cascade
) strict;
create index chunks_by_index on chunks (tenant_id, index_name);

create table tenant_usage (
    tenant_id  text primary key references tenants (tenant_id),
    documents  integer not null default 0 check (documents >= 0),
    bytes      integer not null default 0 check (bytes >= 0),
    chunks     integer not null default 0 check (chunks >= 0)
) strict;
