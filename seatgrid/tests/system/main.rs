//! The whole system in one process (REST, projector, Redis cache, GraphQL) over real PostgreSQL
//! and Redis, each test on its own database and Redis key prefix.

mod access;
mod analytics;
mod browser;
mod cache;
mod checkout;
mod cluster;
mod dev_pages;
mod failover;
mod graphql;
mod graphql_refusals;
mod helpers;
mod own_redis;
mod pages;
mod payments_mock;
mod processes;
mod redis_cluster;
mod roles;
#[cfg(feature = "failpoints")]
mod saga_crash;
mod stalls;
mod subscriptions;
mod write_path;
