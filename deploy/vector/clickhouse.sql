-- The table deploy/vector/appletap.toml writes flow rows to.
CREATE DATABASE IF NOT EXISTS appletap;
CREATE TABLE IF NOT EXISTS appletap.flows (
    start DateTime64(6, 'UTC'),
    end DateTime64(6, 'UTC'),
    community_id Nullable(String),
    transport LowCardinality(String),
    client_ip String,
    client_port Nullable(UInt16),
    server_ip String,
    server_port Nullable(UInt16),
    server_name Nullable(String),
    bytes_to_server UInt64,
    bytes_to_client UInt64,
    service LowCardinality(String),
    apple Bool,
    confidence Nullable(String),
    state LowCardinality(String)
) ENGINE = MergeTree ORDER BY (start, service);
